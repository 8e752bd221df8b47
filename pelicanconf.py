"""Site settings for development builds (`make html`). `publishconf.py` builds on these."""

SITENAME = "Pain Clinic Network"
SITE_TAGLINE = "Find a pain clinic near you, and learn about the treatments they offer."
SITEURL = ""
RELATIVE_URLS = True
TIMEZONE = "America/Chicago"
DEFAULT_LANG = "en"

PATH = "content"
ARTICLE_PATHS = ["articles"]
PAGE_PATHS = ["pages"]
STATIC_PATHS: list[str] = []
THEME = "theme"
PLUGIN_PATHS = ["plugins"]
PLUGINS = ["clinic_directory"]

# Registry and directory settings (defaults in plugins/clinic_directory/settings.py).
CLINIC_DIRECTORY_REGISTRY = "clinics.yaml"
CLINIC_DIRECTORY_STALE_AFTER_DAYS = 365
# Sent to Nominatim by `make geocode` (the build itself never uses the network).
CLINIC_DIRECTORY_GEOCODER_USER_AGENT = "pain-clinic-network-directory/0.1 (clinic directory geocoder)"

# Every template escapes by default: registry text is untrusted.
JINJA_ENVIRONMENT = {"autoescape": True, "trim_blocks": True, "lstrip_blocks": True, "extensions": []}

ARTICLE_URL = "articles/{slug}/"
ARTICLE_SAVE_AS = "articles/{slug}/index.html"
PAGE_URL = "{slug}/"
PAGE_SAVE_AS = "{slug}/index.html"
# The home page is the directory's; articles are listed on it and at /articles/.
INDEX_SAVE_AS = "articles/index.html"
INDEX_URL = "articles/"
DEFAULT_PAGINATION = False
# Site search (theme/templates/search.html over the Pagefind index the build writes).
DIRECT_TEMPLATES = ["index", "search"]
SEARCH_URL = "search/"
SEARCH_SAVE_AS = "search/index.html"


def _newest_first(article):
    """Newest first; articles of the same date by slug, so every build lists them in one order."""
    return (-article.date.timestamp(), article.slug)


ARTICLE_ORDER_BY = _newest_first
# Pages the directory has no use for.
CATEGORY_SAVE_AS = CATEGORIES_SAVE_AS = TAG_SAVE_AS = TAGS_SAVE_AS = ""
AUTHOR_SAVE_AS = AUTHORS_SAVE_AS = ARCHIVES_SAVE_AS = ""
YEAR_ARCHIVE_SAVE_AS = MONTH_ARCHIVE_SAVE_AS = DAY_ARCHIVE_SAVE_AS = ""
ARTICLE_LANG_SAVE_AS = PAGE_LANG_SAVE_AS = DRAFT_SAVE_AS = DRAFT_LANG_SAVE_AS = ""

# Feeds are written by publishconf.py, which knows the site's absolute URL
# (an Atom feed needs absolute links, which a relative-URL dev build cannot give).
AUTHOR = SITENAME
FEED_ALL_ATOM = FEED_ALL_RSS = CATEGORY_FEED_ATOM = TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = AUTHOR_FEED_RSS = None

CACHE_CONTENT = False
LOAD_CONTENT_CACHE = False
