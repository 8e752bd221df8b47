"""``s3://bucket/prefix``: publish to S3 or S3-compatible storage, so that the prefix holds exactly the site.

Each file of the site is one object, its key the prefix and the file's relative POSIX name
(``s3://b/clinics`` puts ``about/index.html`` at ``clinics/about/index.html``; without a prefix the
whole bucket is the site). The client is boto3's, configured the standard way: credentials and
region from the environment or ``~/.aws``, the endpoint of S3-compatible storage from
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (botocore reads all of these itself).

- Files are compared by their bytes: an object is unchanged when its ETag is the file's MD5, as it
  is for an object written with one PUT. A multipart upload's ETag (``"...-3"``) is no MD5, so such
  an object counts as changed, and the deploy replaces it by one written with one PUT.
- New and changed files go up in an order that keeps the live site whole: assets first, then the
  pages that use them, then the files that list pages (``sitemap.xml``, feeds), the home page last.
  Objects the site no longer has are deleted only when every upload succeeded.
- S3 cannot swap a whole site in at once, so a failed deploy is undone instead: every object a deploy
  overwrites is first saved under ``work`` (its bytes and headers); when an upload fails, the saved
  objects are written back and the new ones deleted, and ``DeployFailed`` says the live site was
  restored, or exactly which keys may differ from it when undoing failed too.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .deploy import Changes, DeployFailed, Target, compare, file_md5, site_files

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )
except ImportError as error:  # S3Target says what to do about it; no other target needs boto3
    BOTO3_MISSING: ImportError | None = error
else:
    BOTO3_MISSING = None

UPLOAD_THREADS = 8  # boto3 clients are thread-safe; a first deploy of thousands of small files is latency-bound
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8

# -- how each file is served: one table --------------------------------------------------------------------

# The theme's files keep their names from one build to the next: cached for a day, a new page could
# meet yesterday's stylesheet or script. So a browser asks again for every file (a 304 is cheap)...
NO_CACHE = "no-cache"
# ...but for Pagefind's index files, whose names hold a hash of their content: those never change.
IMMUTABLE = "public, max-age=31536000, immutable"
HASHED_SUFFIXES = (".pf_meta", ".pf_index", ".pf_fragment", ".pf_filter")

# Longest suffix first where one ends another (``.atom.xml`` before ``.xml``). Cache-Control for a suffix
# not listed is NO_CACHE, its Content-Type Python's built-in table's (never the machine's /etc/mime.types,
# so that every machine publishes the same headers), or application/octet-stream (Pagefind's index files).
HEADERS: tuple[tuple[str, str, str], ...] = (
    # suffix         Content-Type                        Cache-Control
    (".atom.xml",    "application/atom+xml",             NO_CACHE),
    (".rss.xml",     "application/rss+xml",              NO_CACHE),
    (".html",        "text/html; charset=utf-8",         NO_CACHE),
    (".xml",         "application/xml",                  NO_CACHE),
    (".json",        "application/json",                 NO_CACHE),
    (".txt",         "text/plain; charset=utf-8",        NO_CACHE),
    (".css",         "text/css; charset=utf-8",          NO_CACHE),
    (".js",          "text/javascript; charset=utf-8",   NO_CACHE),
    (".mjs",         "text/javascript; charset=utf-8",   NO_CACHE),
    (".svg",         "image/svg+xml",                    NO_CACHE),
    (".wasm",        "application/wasm",                 NO_CACHE),
    (".webmanifest", "application/manifest+json",        NO_CACHE),
    (".woff2",       "font/woff2",                       NO_CACHE),
    (".woff",        "font/woff",                        NO_CACHE),
    (".webp",        "image/webp",                       NO_CACHE),
)
NO_SUFFIX = ("application/octet-stream", NO_CACHE)  # ``_headers``, ``CNAME``: configuration, read fresh
BUILT_IN_TYPES = mimetypes.MimeTypes()  # without system files, unlike ``mimetypes.guess_type``


def object_headers(name: str) -> dict[str, str]:
    """ContentType and CacheControl for the site's file ``name``."""
    basename = name.rsplit("/", 1)[-1]
    if basename.endswith(HASHED_SUFFIXES):
        return {"ContentType": "application/octet-stream", "CacheControl": IMMUTABLE}
    for suffix, content_type, cache_control in HEADERS:
        if basename.endswith(suffix):
            return {"ContentType": content_type, "CacheControl": cache_control}
    if "." not in basename.lstrip("."):
        content_type, cache_control = NO_SUFFIX
        return {"ContentType": content_type, "CacheControl": cache_control}
    guessed, encoding = BUILT_IN_TYPES.guess_type(basename, strict=False)
    # A ``.gz`` file is served as the bytes it is, not as what it would unpack to.
    return {"ContentType": guessed if guessed and not encoding else "application/octet-stream",
            "CacheControl": NO_CACHE}


def upload_phase(name: str) -> int:
    """When ``name`` goes up: 0 assets, 1 pages, 2 the files that list pages, 3 the home page.

    A page is not uploaded before what it uses, and nothing points at a page before the page is there."""
    if name == "index.html":
        return 3
    if name == "sitemap.xml" or name.endswith((".atom.xml", ".rss.xml")):
        return 2
    if name.endswith((".html", ".htm")):
        return 1
    return 0


# -- TARGET ------------------------------------------------------------------------------------------------

BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")  # botocore's own check, lenient for S3-compatibles


def parse_s3_url(text: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix), the prefix ``""`` or ending in ``/`` (``s3://b/site``
    must not touch ``site2/``); empty path segments are dropped, ``.`` and ``..`` refused."""
    bucket, _, path = text.removeprefix("s3://").partition("/")
    if not BUCKET.fullmatch(bucket):
        raise DeployFailed(f"{text}: not an s3://bucket/prefix target (the bucket name {bucket!r} is not valid: "
                           "letters, digits, dots and hyphens)")
    segments = [segment for segment in path.split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        raise DeployFailed(f"{text}: the prefix may not contain . or .. segments; name it as it is, "
                           "such as s3://bucket/clinics")
    return bucket, "".join(f"{segment}/" for segment in segments)


@dataclass(frozen=True)
class Saved:
    """An object as it was before a deploy overwrote it: its bytes in ``path``, its headers for PutObject."""

    key: str
    path: Path
    headers: dict[str, Any]


SAVED_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage",
                 "WebsiteRedirectLocation", "Metadata")


class UploadFailed(Exception):
    """Uploads stopped: ``written`` are the files that are (or may be) on the target now, ``name`` the first
    one that failed (None when interrupted), ``cause`` why."""

    def __init__(self, name: str | None, cause: BaseException, written: list[str]) -> None:
        super().__init__(name)
        self.name, self.cause, self.written = name, cause, written


class S3Target(Target):
    """``s3://bucket/prefix``; ``work`` holds a deploy's saved copies of the objects it overwrites."""

    def __init__(self, text: str, work: Path) -> None:
        self.label = text
        self.bucket, self.prefix = parse_s3_url(text)
        self.work = work
        if BOTO3_MISSING is not None:
            raise DeployFailed(f"cannot publish to {text}: boto3 is not installed ({BOTO3_MISSING}); run make setup, "
                               "which installs requirements.lock")
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The S3 client, made on first use (making one reads the configuration and credentials)."""
        if self._client is None:
            with self._explained("connect to"):
                session = boto3.session.Session()
                if session.get_credentials() is None:
                    raise NoCredentialsError()
                self._client = session.client("s3", config=Config(max_pool_connections=UPLOAD_THREADS + 2))
        return self._client

    @property
    def endpoint(self) -> str:
        return self._client.meta.endpoint_url if self._client is not None else "S3"

    def key(self, name: str) -> str:
        return self.prefix + name

    def changes(self, site: Path) -> Changes:
        with self._explained("compare the site with"):
            files = self._files(site)
            return compare({name: md5 for name, (_, md5) in files.items()}, self._live())

    def deploy(self, site: Path) -> Changes:
        with self._explained("publish to", "nothing was changed"):
            files = self._files(site)
            changes = compare({name: md5 for name, (_, md5) in files.items()}, self._live())
        if changes.empty:
            return changes
        self.work.mkdir(parents=True, exist_ok=True)
        holding = Path(tempfile.mkdtemp(prefix="s3-saved-", dir=self.work))
        keep = False
        try:
            with self._explained("publish to", "nothing was changed; the live site is as it was"):
                saved = self._save(changes.changed, holding)
            try:
                self._upload(files, sorted([*changes.added, *changes.changed], key=lambda n: (upload_phase(n), n)))
            except UploadFailed as failure:
                message, keep = self._undo(failure, saved, set(changes.added))
                raise DeployFailed(message) from failure.cause
            self._remove(changes.removed)
        finally:
            if not keep:
                shutil.rmtree(holding, ignore_errors=True)
        return changes

    # -- reading -------------------------------------------------------------------------------------------

    def _files(self, site: Path) -> dict[str, tuple[Path, str]]:
        """The site's files: name -> (path, MD5); refuses names S3 cannot take before anything is sent."""
        files = {name: (path, file_md5(path)) for name, path in site_files(site).items()}
        for name in files:
            try:
                size = len(self.key(name).encode("utf-8"))
            except UnicodeEncodeError:
                raise DeployFailed(f"{site / name}: the name is not valid UTF-8, which S3 keys must be; rename it. "
                                   f"Nothing was published to {self.label}") from None
            if size > MAX_KEY_BYTES:
                raise DeployFailed(f"{site / name}: its key would be {size} bytes, and S3 takes at most "
                                   f"{MAX_KEY_BYTES}; shorten the name or the prefix. Nothing was published to "
                                   f"{self.label}")
        return files

    def _live(self) -> dict[str, str]:
        """The objects under the prefix: name -> ETag, which is the MD5 of the bytes for a one-PUT object."""
        live = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                etag = item["ETag"].strip('"')
                # A multipart ETag is an MD5 of MD5s with "-parts": never equal to a file's MD5, so "changed".
                live[item["Key"][len(self.prefix):]] = f"multipart {etag}" if "-" in etag else etag
        return live

    def _save(self, names: Iterable[str], holding: Path) -> dict[str, Saved]:
        """Copy the objects a deploy will overwrite into ``holding``, before anything is written."""
        saved = {}
        for number, name in enumerate(names):
            key = self.key(name)
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            path = holding / str(number)  # a key can be longer than a file name may be
            with open(path, "wb") as file:
                shutil.copyfileobj(response["Body"], file)
            headers = {field: response[field] for field in SAVED_HEADERS if response.get(field)}
            saved[name] = Saved(key, path, headers)
        if saved:  # for a person who has to put things right by hand when undoing failed
            (holding / "keys.json").write_text(json.dumps({s.path.name: s.key for s in saved.values()}, indent=1))
        return saved

    # -- writing -------------------------------------------------------------------------------------------

    def _upload(self, files: dict[str, tuple[Path, str]], names: list[str]) -> None:
        """Upload ``names`` in their phases, each phase finished before the next begins; ``UploadFailed``
        on the first failure, after the uploads under way have ended and the rest were called off."""
        written: list[str] = []
        for phase in sorted({upload_phase(name) for name in names}):
            try:
                written += self._upload_batch(files, [name for name in names if upload_phase(name) == phase])
            except UploadFailed as failure:
                raise UploadFailed(failure.name, failure.cause, written + failure.written) from failure.cause

    def _upload_batch(self, files: dict[str, tuple[Path, str]], names: list[str]) -> list[str]:
        pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS)
        futures: dict[Future[None], str] = {}
        interrupted: BaseException | None = None
        try:
            for name in names:
                futures[pool.submit(self._put, name, *files[name])] = name
            wait(futures, return_when=FIRST_EXCEPTION)
        except KeyboardInterrupt as error:
            interrupted = error
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        written, failed = [], []
        for future, name in futures.items():
            if future.cancelled():
                continue
            cause = future.exception()
            if cause is None:
                written.append(name)
            else:
                failed.append((name, cause))
                # S3 writes an object whole or not at all: an error S3 answered with wrote nothing, but after
                # a lost connection the object may have been written.
                if not isinstance(cause, ClientError):
                    written.append(name)
        if interrupted is not None:
            raise UploadFailed(None, interrupted, written)
        if failed:
            raise UploadFailed(failed[0][0], failed[0][1], written)
        return written

    def _put(self, name: str, path: Path, md5: str) -> None:
        """One PUT (so that the ETag is the MD5), with Content-MD5 (so that S3 checks the bytes)."""
        with open(path, "rb") as body:
            self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=body, ContentMD5=content_md5(md5),
                                   **object_headers(name))

    def _remove(self, names: tuple[str, ...]) -> None:
        """Delete the objects the site no longer has; the new site is live already, so a failure here
        leaves it live with some old files too."""
        failed, cause = self._delete([self.key(name) for name in names])
        if failed:
            raise DeployFailed(f"published to {self.label}, but {len(failed)} old object(s) could not be deleted "
                               f"({cause}): {', '.join(failed)}. The new site is live, with these files as well; "
                               "publish again to delete them")

    def _delete(self, keys: list[str]) -> tuple[list[str], str]:
        """Delete ``keys`` in batches; the keys that may still be there, and why."""
        failed: list[str] = []
        cause = ""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start:start + DELETE_BATCH]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})
            except (BotoCoreError, ClientError) as error:
                failed += batch
                cause = cause or explain(error, self)
                continue
            for error in response.get("Errors", []):
                failed.append(error["Key"])
                cause = cause or f"S3 said {error.get('Code')}: {error.get('Message')}"
        return failed, cause

    # -- undoing -------------------------------------------------------------------------------------------

    def _undo(self, failure: UploadFailed, saved: dict[str, Saved], added: set[str]) -> tuple[str, bool]:
        """Put back the saved objects and delete the new ones; what ``DeployFailed`` says, and whether to keep
        the saved copies (when one could not be put back, it is the only copy left)."""
        what = (f"uploading {self.key(failure.name)} failed: {explain(failure.cause, self)}" if failure.name
                else f"the deploy was interrupted ({type(failure.cause).__name__})")
        wrong: list[str] = []
        restore_failed = False
        for name in failure.written:  # what visitors see first: the pages and assets that were overwritten
            if name in saved:
                try:
                    self._restore(saved[name])
                except (BotoCoreError, ClientError, OSError) as error:
                    wrong.append(f"{saved[name].key} (not put back: {explain(error, self)})")
                    restore_failed = True
        failed, cause = self._delete([self.key(name) for name in failure.written if name in added])
        wrong += [f"{key} (not deleted: {cause})" for key in failed]
        if not wrong:
            return f"could not publish to {self.label}: {what}; the live site was restored as it was", False
        kept = (f"; the saved copies of the old objects are in {next(iter(saved.values())).path.parent} "
                "(keys.json names them)" if restore_failed else "")
        return (f"could not publish to {self.label}: {what}; undoing the deploy failed too, so these {len(wrong)} "
                f"object(s) may differ from the live site before the deploy: {'; '.join(wrong)}{kept}. Every other "
                "object is as it was; publish again to finish"), restore_failed

    def _restore(self, saved: Saved) -> None:
        with open(saved.path, "rb") as body:
            self.client.put_object(Bucket=self.bucket, Key=saved.key, Body=body, ContentMD5=content_md5(
                file_md5(saved.path)), **saved.headers)

    # -- errors --------------------------------------------------------------------------------------------

    @contextmanager
    def _explained(self, doing: str, after: str = "") -> Iterator[None]:
        """Turn boto3's errors into ``DeployFailed``: what failed on which target, and what would fix it."""
        try:
            yield
        except (BotoCoreError, ClientError) as error:
            raise DeployFailed(f"could not {doing} {self.label}: {explain(error, self)}"
                               + (f"; {after}" if after else "")) from error
        except OSError as error:  # reading the site, or writing a saved copy under work
            raise DeployFailed(f"could not {doing} {self.label}: {error}" + (f"; {after}" if after else "")) \
                from error


def content_md5(md5: str) -> str:
    """The Content-MD5 header for a hex MD5: with it S3 refuses bytes that arrive different."""
    return base64.b64encode(bytes.fromhex(md5)).decode()


def explain(error: BaseException, target: S3Target) -> str:
    """Why an S3 request failed, with what would fix it; never a credential."""
    endpoint = target.endpoint
    if isinstance(error, NoCredentialsError):
        return ("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) or configure "
                "~/.aws (aws configure)")
    if isinstance(error, PartialCredentialsError):
        return f"incomplete credentials ({error}): set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(error, ProfileNotFound):
        return f"{error}: set AWS_PROFILE to a profile in ~/.aws/config, or unset it"
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        return (f"cannot reach {endpoint}: check the network, or AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 for "
                "S3-compatible storage")
    if isinstance(error, ReadTimeoutError):
        return f"{endpoint} did not answer in time; try again"
    if isinstance(error, ClientError):
        return explain_answer(error, target.bucket, endpoint)
    if isinstance(error, BotoCoreError):
        return str(error)
    return f"{type(error).__name__}: {error}"


CREDENTIALS_REFUSED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                       "TokenRefreshRequired", "InvalidClientTokenId", "AuthFailure"}
WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}


def explain_answer(error: ClientError, bucket: str, endpoint: str) -> str:
    """An error S3 answered with."""
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "NoSuchBucket":
        return f"bucket {bucket} does not exist at {endpoint}: create it first, or fix the bucket's name in TARGET"
    if code in CREDENTIALS_REFUSED:
        return (f"the credentials were refused ({code}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(and AWS_SESSION_TOKEN), or the profile in ~/.aws")
    if code in WRONG_REGION or status == 301:
        return f"bucket {bucket} is in another region ({code}): set AWS_REGION to the bucket's region"
    if code in ("AccessDenied", "AllAccessDisabled", "403", "Forbidden") or status == 403:
        return (f"access denied ({error.operation_name}): the credentials need s3:ListBucket on bucket {bucket} "
                "and s3:GetObject, s3:PutObject and s3:DeleteObject on the objects under the prefix")
    message = details.get("Message") or ""
    return f"S3 answered {code or status} to {error.operation_name}" + (f": {message}" if message else "")
