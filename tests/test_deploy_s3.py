"""The ``s3://bucket/prefix`` deploy target against a real S3 server: moto's, over HTTP on loopback.

One server for the module; each test makes a bucket of its own. Failures are real too: a bucket policy
that denies one request makes the server refuse it, the way S3 refuses a write the policy forbids.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from clinic_directory.deploy import Changes, DeployFailed, parse_target
from clinic_directory.deploy_s3 import S3Target
from conftest import publish

HTML = "text/html; charset=utf-8"
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"  # only for names that hold a hash of the content

# The site's files, and the headers each must be served with (spelled out: the module's table is under test).
SITE: dict[str, tuple[bytes, str, str]] = {
    "index.html": (b"<!doctype html><title>Clinics</title><link rel=stylesheet href=/theme/css/site.css>", HTML,
                   NO_CACHE),
    "404.html": (b"<!doctype html><title>Not found</title>", HTML, NO_CACHE),
    "about/index.html": (b"<!doctype html><title>About</title>", HTML, NO_CACHE),
    "clinics/a/index.html": (b"<!doctype html><title>Clinic A</title>", HTML, NO_CACHE),
    "theme/css/site.css": (b"body { margin: 0 }\n", "text/css; charset=utf-8", NO_CACHE),
    "theme/js/site.js": (b"document.documentElement.className = 'js';\n", "text/javascript; charset=utf-8",
                         NO_CACHE),
    "theme/img/logo.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", NO_CACHE),
    "theme/img/photo.png": (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", NO_CACHE),
    "search/directory/words/ab.json": (b'{"ab": [1, 2]}', "application/json", NO_CACHE),
    "sitemap.xml": (b"<?xml version='1.0'?><urlset/>", "application/xml", NO_CACHE),
    "feeds/all.atom.xml": (b"<?xml version='1.0'?><feed/>", "application/atom+xml", NO_CACHE),
    "robots.txt": (b"User-agent: *\n", "text/plain; charset=utf-8", NO_CACHE),
    "_headers": (b"/*\n  X-Content-Type-Options: nosniff\n", "application/octet-stream", NO_CACHE),
    "site.webmanifest": (b'{"name": "Clinics"}', "application/manifest+json", NO_CACHE),
    "pagefind/pagefind.en_1a2b3c.pf_meta": (b"\x1f\x8b\x08\x00binary", "application/octet-stream", IMMUTABLE),
    "pagefind/fragment/en_4d5e.pf_fragment": (b"\x1f\x8b\x08\x00fragment", "application/octet-stream", IMMUTABLE),
    "pagefind/wasm.en.pagefind": (b"\x00asm\x01", "application/octet-stream", NO_CACHE),
    "pagefind/pagefind.wasm": (b"\x00asm\x01\x00\x00\x00", "application/wasm", NO_CACHE),
}
OUTSIDE = {"other/keep.txt": b"not the site's", "site2/index.html": b"another site, beside this one",
           "site.html": b"a key that starts like the prefix"}


# -- the server, the environment, the bucket --------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 over HTTP on a free loopback port, for the whole module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_environment(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3 configured the standard way, from the environment only: nothing of this machine's ~/.aws, and
    never the instance metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-do-not-print")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def s3() -> Any:
    """A client of our own, for setting up and inspecting buckets."""
    return boto3.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"clinics-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


def write_site(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def site_bytes(replace: dict[str, bytes | None] | None = None) -> dict[str, bytes]:
    """SITE's files and their bytes, with files replaced, added, or removed (None)."""
    files = {name: data for name, (data, _, _) in SITE.items()}
    for name, data in (replace or {}).items():
        if data is None:
            del files[name]
        else:
            files[name] = data
    return files


def snapshot(s3: Any, bucket: str) -> dict[str, tuple[bytes, str, str, Any]]:
    """Every object in the bucket: key -> (bytes, Content-Type, Cache-Control, Last-Modified)."""
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=item["Key"])
            objects[item["Key"]] = (got["Body"].read(), got.get("ContentType", ""), got.get("CacheControl", ""),
                                    got["LastModified"])
    return objects


def contents(objects: dict[str, tuple[bytes, str, str, Any]], prefix: str = "") -> dict[str, bytes]:
    return {key[len(prefix):]: data for key, (data, *_) in objects.items() if key.startswith(prefix)}


def without_times(objects: dict[str, tuple[bytes, str, str, Any]]) -> dict[str, tuple[bytes, str, str]]:
    return {key: (data, content_type, cache) for key, (data, content_type, cache, _) in objects.items()}


def record_puts(target: S3Target) -> list[str]:
    """The keys of the PutObject requests ``target`` sends from now on, in the order it sends them."""
    keys: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        keys.append(params["Key"])

    target.client.meta.events.register("provide-client-params.s3.PutObject", record)
    return keys


def deny(s3: Any, bucket: str, *rules: tuple[str, str]) -> None:
    """A bucket policy that denies each (action, key): the server then refuses those requests with 403."""
    statements = [{"Effect": "Deny", "Principal": "*", "Action": action, "Resource": f"arn:aws:s3:::{bucket}/{key}"}
                  for action, key in rules]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))


def published(s3: Any, bucket: str, prefix: str, files: dict[str, bytes], tmp_path: Path, work: Path) -> S3Target:
    """Deploy ``files`` to s3://bucket/prefix and return the target."""
    target = S3Target(f"s3://{bucket}/{prefix}", work)
    target.deploy(write_site(tmp_path / f"site-{uuid.uuid4().hex[:8]}", files))
    assert contents(snapshot(s3, bucket), target.prefix) == files
    return target


# -- deploying --------------------------------------------------------------------------------------------


def test_first_deploy_uploads_exactly_the_site_with_its_headers(s3: Any, bucket: str, tmp_path: Path,
                                                                 work: Path) -> None:
    for key, data in OUTSIDE.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    outside = snapshot(s3, bucket)
    site = write_site(tmp_path / "site", site_bytes())
    target = S3Target(f"s3://{bucket}/site", work)  # no trailing slash: still only keys under site/
    puts = record_puts(target)

    changes = target.deploy(site)

    assert changes == Changes(added=tuple(sorted(SITE)), unchanged=0)
    objects = snapshot(s3, bucket)
    assert {key: objects[key] for key in OUTSIDE} == outside  # not even rewritten
    assert without_times({key: value for key, value in objects.items() if key not in OUTSIDE}) == {
        f"site/{name}": expected for name, expected in SITE.items()}
    for name, (data, _, _) in SITE.items():  # one PUT each, so a later deploy can compare by ETag
        assert s3.head_object(Bucket=bucket, Key=f"site/{name}")["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    # Assets first, then pages, then what lists pages, the home page last.
    assert sorted(puts) == sorted(f"site/{name}" for name in SITE)
    order = [key.removeprefix("site/") for key in puts]
    pages = [name for name in order if name.endswith(".html") and name != "index.html"]
    assets = [name for name in order if not name.endswith(".html") and name not in ("sitemap.xml",
                                                                                      "feeds/all.atom.xml")]
    assert order[:len(assets)] == assets
    assert order[len(assets):len(assets) + len(pages)] == pages
    assert sorted(order[-3:-1]) == ["feeds/all.atom.xml", "sitemap.xml"] and order[-1] == "index.html"
    assert list(work.iterdir()) == []  # the holding directory is gone


def test_second_deploy_sends_only_what_changed_and_deletes_what_went(s3: Any, bucket: str, tmp_path: Path,
                                                                     work: Path) -> None:
    s3.put_object(Bucket=bucket, Key="other/keep.txt", Body=b"not the site's")
    published(s3, bucket, "site/", site_bytes(), tmp_path, work)
    s3.put_object(Bucket=bucket, Key="site/stray.html", Body=b"put there by hand")
    before = snapshot(s3, bucket)
    new = site_bytes({"theme/css/site.css": b"body { margin: 1em }\n", "robots.txt": None,
                      "clinics/b/index.html": b"<!doctype html><title>Clinic B</title>"})
    site = write_site(tmp_path / "new", new)
    target = S3Target(f"s3://{bucket}/site/", work)
    puts = record_puts(target)
    expected = Changes(added=("clinics/b/index.html",), changed=("theme/css/site.css",),
                       removed=("robots.txt", "stray.html"), unchanged=len(SITE) - 2)

    assert target.changes(site) == expected
    assert snapshot(s3, bucket) == before  # changes() changes nothing
    assert puts == []

    assert target.deploy(site) == expected
    assert sorted(puts) == ["site/clinics/b/index.html", "site/theme/css/site.css"]  # unchanged files not sent
    after = snapshot(s3, bucket)
    assert contents(after, "site/") == new
    assert after["other/keep.txt"] == before["other/keep.txt"]
    unchanged = [f"site/{name}" for name in new if name not in ("theme/css/site.css", "clinics/b/index.html")]
    assert {key: after[key] for key in unchanged} == {key: before[key] for key in unchanged}  # same Last-Modified
    assert after["site/clinics/b/index.html"][1:3] == (HTML, NO_CACHE)

    assert target.deploy(site) == Changes(unchanged=len(new))  # and then there is nothing to do
    assert sorted(puts) == ["site/clinics/b/index.html", "site/theme/css/site.css"]


def test_a_multipart_object_counts_as_changed_and_is_replaced(s3: Any, bucket: str, tmp_path: Path,
                                                              work: Path) -> None:
    data = SITE["theme/css/site.css"][0]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="theme/css/site.css")
    part = s3.upload_part(Bucket=bucket, Key="theme/css/site.css", UploadId=upload["UploadId"], PartNumber=1,
                          Body=data)
    s3.complete_multipart_upload(Bucket=bucket, Key="theme/css/site.css", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    assert "-" in s3.head_object(Bucket=bucket, Key="theme/css/site.css")["ETag"]  # the same bytes, not an MD5
    target = S3Target(f"s3://{bucket}", work)
    site = write_site(tmp_path / "site", site_bytes())

    assert target.changes(site).changed == ("theme/css/site.css",)
    target.deploy(site)
    assert s3.head_object(Bucket=bucket, Key="theme/css/site.css")["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert target.changes(site).empty


def test_an_empty_prefix_makes_the_whole_bucket_the_site(s3: Any, bucket: str, tmp_path: Path, work: Path) -> None:
    s3.put_object(Bucket=bucket, Key="old/page.html", Body=b"from before")
    target = S3Target(f"s3://{bucket}/", work)
    assert target.prefix == ""

    changes = target.deploy(write_site(tmp_path / "site", site_bytes()))

    assert changes.removed == ("old/page.html",)
    assert without_times(snapshot(s3, bucket)) == SITE


# -- failures ---------------------------------------------------------------------------------------------

# The second version of the site: changes in every upload phase, a new asset and a new page, a file gone.
CHANGED: dict[str, bytes | None] = {
    "theme/css/site.css": b"body { margin: 2em }\n", "theme/js/new.js": b"console.log('new');\n",
    "about/index.html": b"<title>About us</title>", "clinics/zz/index.html": b"<title>Clinic ZZ</title>",
    "sitemap.xml": b"<?xml version='1.0'?><urlset><url/></urlset>", "index.html": b"<title>Clinics, new</title>",
    "robots.txt": None}


def test_a_refused_upload_restores_the_live_site(s3: Any, bucket: str, tmp_path: Path, work: Path) -> None:
    published(s3, bucket, "site", site_bytes(), tmp_path, work)
    before = snapshot(s3, bucket)
    deny(s3, bucket, ("s3:PutObject", "site/clinics/zz/index.html"))  # a page, after the assets went up
    target = S3Target(f"s3://{bucket}/site", work)
    puts = record_puts(target)

    with pytest.raises(DeployFailed) as failed:
        target.deploy(write_site(tmp_path / "new", site_bytes(CHANGED)))

    message = str(failed.value)
    assert "site/clinics/zz/index.html" in message and "access denied" in message
    assert "the live site was restored as it was" in message
    assert {"site/theme/css/site.css", "site/theme/js/new.js"} <= set(puts)  # there was something to undo
    assert "site/index.html" not in puts  # the home page goes last
    assert without_times(snapshot(s3, bucket)) == without_times(before)
    assert list(work.iterdir()) == []
    assert "testing-secret" not in message


def test_when_undoing_fails_the_message_names_the_keys_that_may_be_wrong(s3: Any, bucket: str, tmp_path: Path,
                                                                         work: Path) -> None:
    published(s3, bucket, "site", site_bytes(), tmp_path, work)
    before = snapshot(s3, bucket)
    deny(s3, bucket, ("s3:PutObject", "site/clinics/zz/index.html"), ("s3:DeleteObject", "site/theme/js/new.js"))
    target = S3Target(f"s3://{bucket}/site", work)

    with pytest.raises(DeployFailed) as failed:
        target.deploy(write_site(tmp_path / "new", site_bytes(CHANGED)))

    message = str(failed.value)
    assert "restored as it was" not in message
    assert "undoing the deploy failed too, so these 1 object(s) may differ" in message
    assert "site/theme/js/new.js (not deleted" in message
    after = snapshot(s3, bucket)
    assert without_times(after) == {**without_times(before), "site/theme/js/new.js": (
        CHANGED["theme/js/new.js"], "text/javascript; charset=utf-8", NO_CACHE)}


def test_saving_the_old_objects_comes_before_any_upload(s3: Any, bucket: str, tmp_path: Path, work: Path) -> None:
    published(s3, bucket, "site", site_bytes(), tmp_path, work)
    before = snapshot(s3, bucket)
    deny(s3, bucket, ("s3:GetObject", "site/index.html"))  # the home page changes, so it is saved first
    target = S3Target(f"s3://{bucket}/site", work)
    puts = record_puts(target)

    with pytest.raises(DeployFailed, match="nothing was changed"):
        target.deploy(write_site(tmp_path / "new", site_bytes(CHANGED)))

    assert puts == []
    s3.delete_bucket_policy(Bucket=bucket)
    assert snapshot(s3, bucket) == before
    assert list(work.iterdir()) == []


def test_an_old_object_that_cannot_be_deleted_leaves_the_new_site_live(s3: Any, bucket: str, tmp_path: Path,
                                                                       work: Path) -> None:
    published(s3, bucket, "site", site_bytes(), tmp_path, work)
    deny(s3, bucket, ("s3:DeleteObject", "site/robots.txt"))
    target = S3Target(f"s3://{bucket}/site", work)
    new = site_bytes(CHANGED)

    with pytest.raises(DeployFailed) as failed:
        target.deploy(write_site(tmp_path / "new", new))

    assert "The new site is live" in str(failed.value) and "site/robots.txt" in str(failed.value)
    assert contents(snapshot(s3, bucket), "site/") == {**new, "robots.txt": SITE["robots.txt"][0]}


def test_a_missing_bucket_says_to_create_it(tmp_path: Path, work: Path) -> None:
    target = S3Target("s3://no-such-bucket-here/site", work)
    site = write_site(tmp_path / "site", site_bytes())
    for attempt in (target.changes, target.deploy):
        with pytest.raises(DeployFailed) as failed:
            attempt(site)
        assert "bucket no-such-bucket-here does not exist" in str(failed.value)
        assert "create it first" in str(failed.value)
        assert "s3://no-such-bucket-here/site" in str(failed.value)


def test_no_credentials_says_how_to_give_them(monkeypatch: pytest.MonkeyPatch, bucket: str, tmp_path: Path,
                                              work: Path) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    target = S3Target(f"s3://{bucket}/site", work)

    with pytest.raises(DeployFailed) as failed:
        target.deploy(write_site(tmp_path / "site", site_bytes()))

    assert "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in str(failed.value)
    assert "~/.aws" in str(failed.value)


def test_an_unreachable_endpoint_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, work: Path) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # standard configuration, read by botocore: no retries
    target = S3Target("s3://clinics/site", work)

    with pytest.raises(DeployFailed) as failed:
        target.changes(write_site(tmp_path / "site", site_bytes()))

    assert f"cannot reach http://127.0.0.1:{port}" in str(failed.value)
    assert "AWS_ENDPOINT_URL" in str(failed.value)


def test_a_key_too_long_for_s3_is_refused_before_anything_is_sent(s3: Any, bucket: str, tmp_path: Path,
                                                                  work: Path) -> None:
    long_name = "/".join(["d" * 200] * 6) + "/index.html"  # 1,216 bytes
    target = S3Target(f"s3://{bucket}/site", work)
    puts = record_puts(target)

    with pytest.raises(DeployFailed, match="at most 1024"):
        target.deploy(write_site(tmp_path / "site", {**site_bytes(), long_name: b"<title>Far down</title>"}))

    assert puts == [] and snapshot(s3, bucket) == {}


# -- TARGET -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "bucket", "prefix"), [
    ("s3://bucket/some/prefix", "bucket", "some/prefix/"),
    ("s3://bucket/some/prefix/", "bucket", "some/prefix/"),
    ("s3://bucket//some//prefix", "bucket", "some/prefix/"),
    ("s3://bucket", "bucket", ""),
    ("s3://bucket/", "bucket", ""),
])
def test_parse_target_makes_an_s3_target(text: str, bucket: str, prefix: str, work: Path) -> None:
    target = parse_target(text, work)
    assert isinstance(target, S3Target)
    assert (target.label, target.bucket, target.prefix, target.work) == (text, bucket, prefix, work)


@pytest.mark.parametrize("text", ["s3://", "s3:///prefix", "s3://bucket name/x", "s3://bucket/a/../b"])
def test_parse_target_refuses_a_malformed_s3_target(text: str, work: Path) -> None:
    with pytest.raises(DeployFailed, match="s3://"):
        parse_target(text, work)


def test_make_publish_deploys_the_sample_site_to_a_bucket(s3: Any, bucket: str, tmp_path: Path) -> None:
    """The whole publish (check, build, verify, deploy), then again: nothing to do."""
    target = f"s3://{bucket}/www"
    result = publish(tmp_path / "publish", target, "--allow-placeholders")
    assert result.returncode == 0, result.stderr
    built = {path.relative_to(tmp_path / "publish" / "site").as_posix(): path.read_bytes()
             for path in (tmp_path / "publish" / "site").rglob("*") if path.is_file()}
    assert contents(snapshot(s3, bucket), "www/") == built
    assert f"published to {target}: {len(built):,} added, 0 changed, 0 removed" in result.stdout
    again = publish(tmp_path / "publish", target, "--allow-placeholders")
    assert again.returncode == 0, again.stderr
    assert f"{target} already holds this site; nothing was deployed" in again.stdout


def test_make_publish_will_not_empty_a_prefix_it_did_not_fill(s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="www/their-page.html", Body=b"theirs")
    before = snapshot(s3, bucket)
    result = publish(tmp_path / "publish", f"s3://{bucket}/www", "--allow-placeholders")
    assert result.returncode == 1
    assert "holds 1 file(s) that make publish did not put there (their-page.html)" in result.stderr
    assert snapshot(s3, bucket) == before
