"""The demo crawl's sites: host, name, layout, language, navigation and footer, and UI labels per language."""

from __future__ import annotations

from dataclasses import dataclass

LABELS = {
    "en": {"search": "Search", "related": "Related pages", "home": "Home",
           "cookies": "We use cookies to improve your experience. "
                      "By continuing to browse, you agree to our use of cookies.",
           "accept": "Accept all", "reject": "Reject", "share": "Share: Facebook · Twitter · Email",
           "newsletter": "Newsletter", "newsletter_text": "The best stories in your inbox, every week.",
           "from": "From {site}, the free encyclopedia"},
    "fr": {"search": "Rechercher", "related": "Pages liées", "home": "Accueil",
           "cookies": "Nous utilisons des cookies pour améliorer votre expérience.",
           "accept": "Tout accepter", "reject": "Refuser", "share": "Partager : Facebook · Twitter · E-mail",
           "newsletter": "Lettre d'information", "newsletter_text": "Les meilleurs articles chaque semaine.",
           "from": "Un article de {site}, l'encyclopédie libre"},
    "es": {"search": "Buscar", "related": "Páginas relacionadas", "home": "Inicio",
           "cookies": "Usamos cookies para mejorar su experiencia.",
           "accept": "Aceptar todo", "reject": "Rechazar", "share": "Compartir: Facebook · Twitter · Correo",
           "newsletter": "Boletín", "newsletter_text": "Las mejores historias cada semana.",
           "from": "De {site}, la enciclopedia libre"},
}


@dataclass(frozen=True)
class Site:
    host: str
    name: str
    layout: str  # modern | classic | portal
    lang: str
    nav: tuple[str, ...]
    footer: tuple[str, ...]


EN_NAV = ("Home", "Topics", "Recent changes", "Random page", "About", "Contact")
EN_FOOTER = ("Privacy policy", "About us", "Disclaimers", "Contact")
SITES = {
    "wiki": (Site("en.openwiki-demo.org", "OpenWiki", "modern", "en",
                  ("Main page", "Contents", "Current events", "Random article", "About OpenWiki", "Donate"),
                  ("This page was last edited on 2 March 2024.", "Privacy policy", "About OpenWiki", "Disclaimers")),
             Site("kb.encyclo-demo.net", "Encyclo Knowledge Base", "portal", "en", EN_NAV, EN_FOOTER)),
    "mirror": (Site("wikimirror-demo.info", "WikiMirror", "classic", "en", EN_NAV, EN_FOOTER),
               Site("allfacts-demo.com", "AllFacts", "portal", "en", EN_NAV, EN_FOOTER),
               Site("readerdigest-demo.net", "Reader Digest Archive", "modern", "en", EN_NAV, EN_FOOTER)),
    "code": (Site("codehub-demo.dev", "CodeHub", "modern", "en",
                  ("Explore", "Topics", "Trending", "Pricing", "Sign in"), ("Terms", "Privacy", "Status", "Docs")),
             Site("src.gitforge-demo.org", "GitForge", "classic", "en",
                  ("Projects", "Groups", "Snippets", "Help"), ("About GitForge", "Blog", "Contact"))),
    "docs": (Site("docs.pyref-demo.org", "PyRef Documentation", "modern", "en",
                  ("Tutorial", "Library reference", "Language reference", "Glossary", "Index"),
                  ("Found a bug?", "Report an issue", "Show source")),
             Site("devdocs-demo.net", "DevDocs Mirror", "classic", "en",
                  ("Python", "JavaScript", "Rust", "Go", "Preferences"), ("About", "Offline data", "Contact"))),
    "forum": (Site("askdev-demo.com", "AskDev", "portal", "en",
                   ("Questions", "Tags", "Users", "Unanswered", "Ask a question"),
                   ("About", "Help", "Legal", "Contact")),
              Site("forum.knowhow-demo.org", "KnowHow Forum", "classic", "en",
                   ("Forums", "New posts", "Members", "Search", "Rules"), ("Forum rules", "Privacy", "Contact staff"))),
    "study": (Site("studyhelp-demo.net", "StudyHelp", "portal", "en",
                   ("Subjects", "Practice", "Flashcards", "Tutors", "Log in"), EN_FOOTER),),
    "wiki_fr": (Site("fr.openwiki-demo.org", "OpenWiki", "modern", "fr",
                     ("Accueil", "Portails thématiques", "Article au hasard", "Contact", "Faire un don"),
                     ("Dernière modification de cette page le 2 mars 2024.", "Politique de confidentialité",
                      "À propos d'OpenWiki", "Avertissements")),),
    "wiki_es": (Site("es.openwiki-demo.org", "OpenWiki", "modern", "es",
                     ("Portada", "Portal de la comunidad", "Artículo aleatorio", "Contacto", "Donaciones"),
                     ("Esta página se editó por última vez el 2 mar 2024.", "Política de privacidad",
                      "Acerca de OpenWiki", "Limitación de responsabilidad")),),
    "boilerplate": (Site("northwind-demo.com", "Northwind Traders", "portal", "en", EN_NAV, EN_FOOTER),
                    Site("acme-demo.io", "Acme Cloud", "modern", "en",
                         ("Products", "Solutions", "Pricing", "Docs", "Log in"), EN_FOOTER),
                    Site("cityguide-demo.net", "City Guide", "classic", "en", EN_NAV, EN_FOOTER)),
    "reports": (Site("reports.openlab-demo.org", "OpenLab Reports", "modern", "en", EN_NAV, EN_FOOTER),),
}
