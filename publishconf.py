"""Settings for the published site (`make publish`): absolute URLs and feeds."""

import os
import sys

sys.path.append(os.curdir)
from pelicanconf import *  # noqa: E402,F403

SITEURL = os.environ.get("SITEURL", "https://clinics.example.org")
RELATIVE_URLS = False
FEED_ALL_ATOM = "feeds/articles.atom.xml"
FEED_MAX_ITEMS = 50

# Where `make publish` deploys when no TARGET= is given: a directory a web server (or a host such as
# Netlify or Cloudflare Pages) serves. README, "Publishing", lists the other kinds of target.
CLINIC_DIRECTORY_PUBLISH_TARGET = "public"
