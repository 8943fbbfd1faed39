import pytest
from datatrove.data import Document

from curation.license import LicenseFilter, license_signal, opt_out_signal


@pytest.mark.parametrize(
    "html,expected",
    [
        ('<a rel="license" href="https://creativecommons.org/licenses/by/4.0/">CC BY</a>', "cc-by"),
        ("<a rel='license' href='https://creativecommons.org/licenses/by-sa/3.0/deed.en'>x</a>", "cc-by-sa"),
        ('<link rel="license" href="http://creativecommons.org/publicdomain/zero/1.0/">', "cc0"),
        ('<a href="https://creativecommons.org/publicdomain/mark/1.0/">PD</a>', "public-domain"),
        ('<a href="https://creativecommons.org/licenses/by-nc-nd/4.0/">x</a>', "cc-by-nc-nd"),
        ("<p>This text is released into the public domain.</p>", "public-domain"),
        ("<footer>© 2024 Example Corp. All rights reserved.</footer>", "all-rights-reserved"),
        ("<p>No statement at all.</p>", None),
    ],
)
def test_license_signal(html, expected):
    assert license_signal(html) == expected


def test_rel_license_wins_over_other_cc_links():
    html = '<a href="https://creativecommons.org/licenses/by-nc/4.0/">theirs</a><a rel="license" href="https://creativecommons.org/licenses/by/4.0/">ours</a>'
    assert license_signal(html) == "cc-by"


def test_opt_out_signal():
    assert opt_out_signal('<meta name="robots" content="noai, noimageai">') == "noai,noimageai"
    assert opt_out_signal("<meta content='index, follow, noai' name='robots'>") == "noai"
    assert opt_out_signal('<meta name="description" content="noai">') is None
    assert opt_out_signal('<meta name="robots" content="index, follow">') is None


def doc(url, license=None, opt_out=None):
    metadata = {"url": url}
    if license:
        metadata["license"] = license
    if opt_out:
        metadata["opt_out"] = opt_out
    return Document(text="t", id=url, metadata=metadata)


def test_license_filter_rules():
    strict = LicenseFilter(licensed_only=True, allow_domains=["partner.org"], deny_domains=["bad.com"])
    assert strict.filter(doc("https://a.com/x", "cc-by")) is True
    assert strict.filter(doc("https://a.com/x", "cc-by-nc")) == (False, "not_permissive")
    assert strict.filter(doc("https://a.com/x")) == (False, "not_permissive")
    assert strict.filter(doc("https://a.com/x", "cc0", "noai")) == (False, "opt_out")
    assert strict.filter(doc("https://news.partner.org/x")) is True
    assert strict.filter(doc("https://shop.bad.com/x", "cc-by")) == (False, "denied_domain")
    lenient = LicenseFilter(respect_opt_out=False)
    assert lenient.filter(doc("https://a.com/x", None, "noai")) is True
