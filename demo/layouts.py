"""HTML rendering of web documents in three site layouts (modern, classic, portal) with their page chrome."""

from __future__ import annotations

import html
from urllib.parse import quote

from demo.sites import LABELS
from demo.vocabulary import LEGAL_LINKS
from demo.web import Block, WebDoc
from demo.words import slug

LICENSE_LINKS = {
    "cc-by": ("https://creativecommons.org/licenses/by/4.0/", "CC BY 4.0"),
    "cc-by-sa": ("https://creativecommons.org/licenses/by-sa/4.0/", "CC BY-SA 4.0"),
    "cc0": ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0 1.0"),
    "public-domain": ("https://creativecommons.org/publicdomain/mark/1.0/", "Public Domain Mark 1.0"),
}


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def attr(text: str) -> str:
    return html.escape(text, quote=True)


def post_header(block: Block) -> str:
    a = dict(block.attrs)
    accepted = ' <span class="accepted">✓ Accepted</span>' if a["role"] == "accepted" else ""
    return (f'<div class="post {a["role"]}"><div class="post-meta"><a class="user" href="/users/{attr(a["user"])}">'
            f'{esc(a["user"])}</a> <span class="votes">{a["votes"]} votes</span> '
            f'<time datetime="{a["time"]}">{a["time"][:10]}</time>{accepted}</div><div class="post-body">')


def render_block(block: Block) -> str:
    if block.kind == "h2":
        return f"<h2>{esc(block.text)}</h2>"
    if block.kind == "p":
        return f"<p>{esc(block.text)}</p>"
    if block.kind == "pre":
        return f'<pre><code class="language-python">{esc(block.text)}</code></pre>'
    if block.kind == "quote":
        return f"<blockquote>{esc(block.text)}</blockquote>"
    if block.kind == "ul":
        return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in block.text.split("\n")) + "</ul>"
    if block.kind == "links":
        return "<ul class=\"links\">" + "".join(
            f'<li><a href="/{slug(line)}.html">{esc(line)}</a></li>' for line in block.text.split("\n")) + "</ul>"
    return f'<div class="meta">{esc(block.text)}</div>'


def render_body(blocks: list[Block]) -> str:
    parts, in_post = [], False
    for block in blocks:
        if block.kind == "post":
            parts.append(("</div></div>" if in_post else "") + post_header(block))
            in_post = True
        else:
            parts.append(render_block(block))
    if in_post:
        parts.append("</div></div>")
    return "\n".join(parts)


def license_footer(doc: WebDoc) -> str:
    if doc.license in LICENSE_LINKS:
        href, name = LICENSE_LINKS[doc.license]
        return f'<p class="license">Text is available under <a rel="license" href="{href}">{name}</a>.</p>'
    if doc.license == "all-rights-reserved":
        return f'<p class="copyright">© 2024 {esc(doc.site.name)}. All rights reserved.</p>'
    return ""


def head(doc: WebDoc, title: str) -> str:
    meta_charset = f'<meta charset="{doc.charset}">\n' if doc.charset_declared_in in ("meta", "both") else ""
    robots = '<meta name="robots" content="noai, noimageai">\n' if doc.license == "noai" else ""
    return (f'<head>\n{meta_charset}<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n{robots}<link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>")


def link_list(titles: tuple[str, ...], prefix: str = "/wiki/") -> str:
    return "".join(f'<li><a href="{prefix}{quote(t.replace(" ", "_"))}">{esc(t)}</a></li>' for t in titles)


def heavy_chrome(doc: WebDoc) -> str:
    """Extra page furniture of boilerplate pages: banners, link walls, legal lines."""
    labels = LABELS[doc.site.lang]
    return (f'<div class="promo">Free shipping on orders over $50 | Download our app | '
            f'{" | ".join(doc.site.nav)}</div>\n<div class="link-wall"><ul>{link_list(doc.sidebar, "/")}</ul></div>\n'
            f'<div class="legal"><p>{" · ".join(LEGAL_LINKS)}</p><p>{labels["home"]} | About | Contact</p>'
            f"<p>Follow us: Facebook Twitter Instagram LinkedIn YouTube</p></div>")


def render_modern(doc: WebDoc, body: str) -> str:
    site, labels = doc.site, LABELS[doc.site.lang]
    nav = "".join(f'<li><a href="/{slug(n)}">{esc(n)}</a></li>' for n in site.nav)
    footer = "".join(f"<li>{esc(f)}</li>" for f in site.footer)
    return f"""<!DOCTYPE html>
<html lang="{site.lang}">
{head(doc, f"{doc.title} - {site.name}")}
<body>
<header class="site-header"><a class="logo" href="/">{esc(site.name)}</a>
<form class="search" action="/search"><input type="search" name="q" placeholder="{labels['search']}">
<button>{labels['search']}</button></form></header>
<nav class="main-nav"><ul>{nav}</ul></nav>
{heavy_chrome(doc) if doc.heavy_chrome else ""}
<div class="page">
<main id="content"><article>
<h1>{esc(doc.title)}</h1>
{body}
</article></main>
<aside class="sidebar"><h2>{labels['related']}</h2><ul>{link_list(doc.sidebar)}</ul></aside>
</div>
<footer class="site-footer"><ul>{footer}</ul>{license_footer(doc)}</footer>
</body>
</html>
"""


def render_classic(doc: WebDoc, body: str) -> str:
    site, labels = doc.site, LABELS[doc.site.lang]
    menu = " | ".join(f'<a href="/{slug(n)}">{esc(n)}</a>' for n in site.nav)
    side = "<br>\n".join(f'<a href="/wiki/{quote(t)}">{esc(t)}</a>' for t in doc.sidebar)
    return f"""<html>
{head(doc, f"{site.name} :: {doc.title}")}
<body>
<div id="wrapper">
<div id="top"><div class="brand">{esc(site.name)}</div><div class="menu">{menu}</div></div>
{heavy_chrome(doc) if doc.heavy_chrome else ""}
<div id="left"><div class="box"><b>{labels['related']}</b><br>
{side}</div></div>
<div id="center"><div class="post-title"><h1>{esc(doc.title)}</h1></div>
<div class="entry">
{body}
</div></div>
<div id="bottom">{" · ".join(esc(f) for f in site.footer)}{license_footer(doc)}</div>
</div>
</body>
</html>
"""


def render_portal(doc: WebDoc, body: str) -> str:
    site, labels = doc.site, LABELS[doc.site.lang]
    section = site.nav[1]
    return f"""<!DOCTYPE html>
<html lang="{site.lang}">
{head(doc, f"{doc.title} | {site.name}")}
<body>
<div class="cookie-banner">{labels['cookies']}
<button>{labels['accept']}</button> <button>{labels['reject']}</button></div>
<header><div class="topbar"><a href="/">{esc(site.name)}</a>
<a href="/login">Log in</a> <a href="/signup">Sign up</a></div>
<nav class="breadcrumbs"><a href="/">{labels['home']}</a> ›
<a href="/{slug(section)}">{esc(section)}</a> › {esc(doc.title)}</nav></header>
{heavy_chrome(doc) if doc.heavy_chrome else ""}
<div class="container"><div class="row">
<div class="col-main"><h1 class="page-title">{esc(doc.title)}</h1>
<div class="content">
{body}
</div>
<div class="share">{labels['share']}</div></div>
<div class="col-side"><div class="widget"><h4>{labels['related']}</h4><ul>{link_list(doc.sidebar)}</ul></div>
<div class="widget newsletter"><h4>{labels['newsletter']}</h4><p>{labels['newsletter_text']}</p></div></div>
</div></div>
<footer><p>{" | ".join(esc(f) for f in site.footer)}</p>{license_footer(doc)}</footer>
</body>
</html>
"""


LAYOUTS = {"modern": render_modern, "classic": render_classic, "portal": render_portal}


def render_html(doc: WebDoc) -> str:
    return LAYOUTS[doc.site.layout](doc, render_body(doc.blocks))
