"""License and opt-out signals a page states about itself.

Read from the page's HTML before extraction (the signals live in links and meta tags
that extraction throws away): Creative Commons licences (``rel="license"`` links and
links to creativecommons.org), public-domain marks, "all rights reserved" notices and
robots opt-outs (``<meta name="robots" content="noai, noimageai">`` and the like).
"""

import re
from urllib.parse import urlsplit

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

CC_LINK = re.compile(r"creativecommons\.org/(licenses|publicdomain)/([a-z\-]+)(?:/(\d(?:\.\d)?))?", re.IGNORECASE)
LINK_TAG = re.compile(r"<(?:a|link)\b[^>]*>", re.IGNORECASE)
META_TAG = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
ATTR = re.compile(r"""([a-zA-Z\-:]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""")
PUBLIC_DOMAIN_TEXT = re.compile(r"\b(released|dedicated|placed) (in)?to the public domain\b|\bpublic domain mark\b", re.IGNORECASE)
ALL_RIGHTS_RESERVED = re.compile(r"\ball rights reserved\b", re.IGNORECASE)
OPT_OUT_DIRECTIVES = ("noai", "noimageai", "notrain", "noml")
ROBOTS_NAMES = ("robots", "googlebot", "ccbot", "gptbot")

# licences that allow use in a training set (with attribution where the licence asks)
PERMISSIVE = frozenset({"cc0", "public-domain", "cc-by", "cc-by-sa"})


def attributes(tag: str) -> dict[str, str]:
    return {name.lower(): value.strip("\"'") for name, value in ATTR.findall(tag)}


def cc_license(href: str) -> str | None:
    match = CC_LINK.search(href)
    if not match:
        return None
    kind, code = match.group(1).lower(), match.group(2).lower()
    if kind == "publicdomain":
        return "cc0" if code == "zero" else "public-domain"
    return f"cc-{code}"


def license_signal(html: str) -> str | None:
    """The licence a page declares: rel=license first, any CC link next, then text marks."""
    links = [attributes(tag) for tag in LINK_TAG.findall(html)]
    declared = [a for a in links if "license" in a.get("rel", "").lower().split()]
    for link in declared + links:
        found = cc_license(link.get("href", ""))
        if found:
            return found
    if PUBLIC_DOMAIN_TEXT.search(html):
        return "public-domain"
    if ALL_RIGHTS_RESERVED.search(html):
        return "all-rights-reserved"
    return None


def opt_out_signal(html: str) -> str | None:
    """Comma-joined opt-out directives from robots-style meta tags, e.g. ``noai,noimageai``."""
    found: list[str] = []
    for tag in META_TAG.findall(html):
        attrs = attributes(tag)
        if attrs.get("name", "").lower() not in ROBOTS_NAMES:
            continue
        for directive in re.split(r"[,\s]+", attrs.get("content", "").lower()):
            if directive in OPT_OUT_DIRECTIVES and directive not in found:
                found.append(directive)
    return ",".join(found) or None


def host(url: str | None) -> str:
    return (urlsplit(url or "").hostname or "").lower()


def host_matches(hostname: str, domains: frozenset[str]) -> bool:
    """True when the host is one of the domains or a subdomain of one."""
    parts = hostname.split(".")
    return any(".".join(parts[i:]) in domains for i in range(len(parts)))


class LicenseFilter(BaseFilter):
    """Drops denied domains, opted-out pages and, with ``licensed_only``, pages without a permissive licence.

    Hosts on the allow list (and their subdomains) are kept regardless: the list is for
    sources the team holds rights to by agreement.
    """

    name = "⚖ license"

    def __init__(
        self,
        exclusion_writer=None,
        licensed_only: bool = False,
        respect_opt_out: bool = True,
        allow_domains: list[str] = (),
        deny_domains: list[str] = (),
    ):
        super().__init__(exclusion_writer)
        self.licensed_only = licensed_only
        self.respect_opt_out = respect_opt_out
        self.allow_domains = frozenset(d.lower() for d in allow_domains)
        self.deny_domains = frozenset(d.lower() for d in deny_domains)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        hostname = host(doc.metadata.get("url"))
        if hostname and host_matches(hostname, self.deny_domains):
            return False, "denied_domain"
        if hostname and host_matches(hostname, self.allow_domains):
            return True
        if self.respect_opt_out and doc.metadata.get("opt_out"):
            return False, "opt_out"
        if self.licensed_only and doc.metadata.get("license") not in PERMISSIVE:
            return False, "not_permissive"
        return True
