"""Word lists and sentence templates the demo generators fill in (users, questions, spam, papers)."""

USER_ADJECTIVES = ("quiet", "rusty", "bright", "lazy", "clever", "sleepy", "brave", "curious",
                   "silent", "happy", "tiny", "cosmic", "mellow", "swift")
USER_NOUNS = ("otter", "falcon", "badger", "lynx", "heron", "panda", "walrus", "gecko", "koala",
              "moose", "raven", "yak", "beetle", "marmot")
GIVEN_NAMES = ("Ada", "Bruno", "Chen", "Dalia", "Emeka", "Freya", "Goran", "Hana", "Ilya", "Jonas",
               "Keiko", "Luis", "Maya", "Nils", "Omar", "Priya", "Rosa", "Sven", "Tariq", "Ulla")
FAMILY_NAMES = ("Lindqvist", "Okafor", "Moreau", "Tanaka", "Novak", "Haddad", "Fischer", "Rossi",
                "Kowalski", "Silva", "Nakamura", "Petrov", "Jensen", "Costa", "Brennan", "Varga")

CODE_QUESTION_TITLES = (
    "How does {name}() in {module} work?",
    "What is the purpose of {module}.{name}?",
    "Confused by {module}.{name}: what does it actually do?",
    "When should I use {name} from {module}?",
)
CODE_QUESTION_BODIES = (
    "I keep running into {sig} while reading code that uses {module}, and I am not sure I understand "
    "what it does. Could someone explain it?",
    "The signature is {sig}, but the behaviour surprised me in a small script. What is it supposed to do, "
    "and are there pitfalls?",
    "I am reviewing a pull request that calls {sig} from {module}. Before approving it I would like to "
    "understand the contract of this function.",
)
GENERAL_QUESTION_TITLES = (
    "What is {title}?",
    "Can someone explain {title} in simple terms?",
    "Question about {title}",
    "Why is {title} important?",
)
GENERAL_QUESTION_BODIES = (
    "I came across {title} ({description}) and would like to understand it better. Where does it come "
    "from and why does it matter?",
    "My textbook only mentions {title} in passing. Is there a short explanation somewhere?",
    "While reading about {description}, I saw {title} mentioned several times. What is it exactly?",
)
ANSWER_INTROS = (
    "The documentation describes it like this:",
    "Straight from the docstring:",
    "Short version, quoting the reference:",
)
RELATED_INTROS = (
    "It may also help to read about {title}.",
    "A related topic worth knowing is {title}.",
    "For context, have a look at {title} as well.",
)
FOLLOW_UPS = (
    "Thanks, this is exactly what I needed.",
    "That cleared it up for me, much appreciated.",
    "Great answer. The second part was the piece I was missing.",
    "Marking this as accepted, thank you all.",
)
HOMEWORK_INTROS = (
    "Stuck on this homework problem, can anyone walk me through it?",
    "Found this in an old exam and I cannot get the same answer as the key:",
    "Our study group disagrees about this one. How would you solve it?",
)
CODE_EXERCISE_INTROS = (
    "I am practising for an interview and got stuck on this exercise:",
    "My solution passes the examples but fails the hidden tests. The task is:",
)
PAPER_TITLES = ("{t}: A Short Survey", "Notes on {t} and Related Topics", "{t} in Context: An Overview",
                "A Review of {t}")
NEAR_DUP_INSERTS = ("also", "notably", "indeed", "reportedly", "originally", "still", "often")
NEAR_DUP_APPENDIX = (
    "This article was republished with permission.",
    "Content may have been edited for length and clarity.",
    "Last reviewed in March 2024 by our editors.",
    "Source: community contributions, lightly edited.",
)

SPAM_PRODUCTS = ("replica watches", "weight loss pills", "casino bonus", "cheap flights", "payday loans",
                 "crypto signals", "designer handbags", "instagram followers", "essay writing",
                 "seo backlinks", "phone unlock codes", "car insurance quotes", "forex robot",
                 "discount sneakers")
SPAM_WORDS = ("best", "cheap", "top", "discount", "free", "online", "buy", "sale", "deal", "official",
              "original", "fast", "2024", "review", "usa", "shop")
SPAM_CITIES = ("London", "Paris", "New York", "Berlin", "Madrid", "Toronto", "Sydney", "Dubai",
               "Chicago", "Miami", "Boston", "Denver")
SPAM_HOOKS = ("CLICK HERE NOW", "LIMITED TIME OFFER", "100% FREE", "BEST PRICE GUARANTEED", "ACT FAST",
              "NO CREDIT CHECK", "DOCTORS HATE THIS", "ORDER TODAY", "WIN BIG")
SPAM_TLDS = ("biz", "info", "xyz", "top", "click")
BOILERPLATE_MESSAGES = (
    "This page has moved. Please update your bookmarks.",
    "Your session has expired. Please log in again to continue.",
    "No results were found for your search.",
    "Thank you for subscribing to our newsletter!",
    "This content is only available to registered members.",
    "The page you requested is temporarily unavailable.",
    "Your cart is empty.",
    "Please enable JavaScript to view this site.",
)
LEGAL_LINKS = ("Terms of Use", "Privacy Policy", "Cookie Policy", "Imprint", "Accessibility", "Sitemap",
               "Careers", "Press", "Help Center", "Store Locator", "Gift Cards", "Affiliates")
