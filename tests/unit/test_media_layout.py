"""Where uploads live: the environment's choice checked (sitekit.model.media_problems) and
resolved once, into every master's environment, each site's nginx location and directory."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from sitekit import model
from sitekit.catalogue import validate
from tests.unit.test_preflight import REPO, inventories, playbook  # noqa: F401

SITES = [{"name": "harbor", "domains": ["harbor.example"]},
         {"name": "meadow", "domains": ["meadow.example"], "pool": "small"}]
POOLS = {"small": {}}
KEYS = {"SITEKIT_S3_ACCESS_KEY": "AKEXAMPLE", "SITEKIT_S3_SECRET_KEY": "s" * 40}


def problems(shared=None, **layout):
    found = model.media_problems(model.Layout(env="prod", **layout), shared)
    return [f"{p.field}: {p.message}" for p in found]


def resolved(**layout):
    result = validate(SITES, pools=POOLS, env="prod")
    assert result.ok, result.problems
    return model.resolve(result, model.Layout(env="prod", **layout))


def test_local_storage_on_one_web_host_is_fine():
    assert problems() == []


def test_local_storage_with_several_web_hosts_is_refused():
    # local mode's "hosts" are stacks on one machine (benches, tests): not refused
    assert problems(web_hosts=2) == []
    assert problems(mode="system", web_hosts=2) == [
        "sitekit_media_storage: 'local' keeps uploads on the web host that received them, and "
        "this environment has 2 web hosts: use 's3' (an object store on the storage group, "
        "docs/operations.md#uploads)"]


def test_s3_needs_an_endpoint_a_bucket_and_credentials_each_named():
    found = problems(media_storage="s3", s3_endpoint="", s3_bucket="Bad_Bucket", web_hosts=2)
    assert [line.split(":", 1)[0] for line in found] == [
        "sitekit_s3_endpoint", "sitekit_s3_bucket", "sitekit_s3_access_key",
        "sitekit_s3_secret_key"]
    assert "is the group empty?" in found[0]
    assert "put vault_sitekit_s3_secret_key in the environment's vault" in found[3]


def test_s3_with_everything_is_fine_on_any_number_of_web_hosts():
    assert problems(KEYS, media_storage="s3", s3_endpoint="http://10.0.0.5:8333",
                    s3_bucket="sitekit-media", web_hosts=3) == []


@pytest.mark.parametrize("value", ["ftp", "", "S3"])
def test_an_unknown_storage_is_refused(value):
    assert problems(media_storage=value) == [
        f"sitekit_media_storage: must be 'local' or 's3', got {value!r}"]


def test_a_limit_below_one_byte_is_refused():
    assert problems(media_max_bytes=0) == [
        "sitekit_media_max_bytes: must be a positive number of bytes, got 0"]


def test_local_storage_resolves_one_directory_per_present_site_owned_by_its_master():
    built = resolved(mode="system", media_root="/srv/sitekit/media", media_max_bytes=1000)
    harbor = built.sites[0]
    assert harbor["media_location"] == "/media/harbor/"
    assert harbor["media_dir"] == "/srv/sitekit/media/harbor" and harbor["media_proxy"] == ""
    assert built.variables()["sitekit_media_dirs"] == [
        {"name": "harbor", "path": "/srv/sitekit/media/harbor", "user": "sk-harbor"},
        {"name": "meadow", "path": "/srv/sitekit/media/meadow", "user": "sk-small"}]
    assert built.variables()["sitekit_layout"]["request_body_limit"] == 1000 + 1024 * 1024
    # where nginx serves them is where Django links them
    assert built.variables()["sitekit_layout"]["media_url"] == settings.MEDIA_URL == "/media/"
    # what nginx serves under /media/ is what Django stores: these four, each as its type
    assert built.variables()["sitekit_layout"]["media_types"] == {
        "png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
    for master in built.masters:
        assert master["env"]["SITEKIT_MEDIA_STORAGE"] == "local"
        assert master["env"]["SITEKIT_MEDIA_ROOT"] == "/srv/sitekit/media"
        assert master["env"]["SITEKIT_MEDIA_MAX_BYTES"] == "1000"
        assert "SITEKIT_S3_BUCKET" not in master["env"]


def test_the_nginx_templates_take_the_uploads_path_from_the_model():
    # one source for the path: a template that wrote it itself would fall behind a change
    templates = {path.name: path.read_text()
                 for path in (REPO / "templates" / "nginx").glob("*.j2")}
    assert "sitekit_layout.media_url" in templates["site.conf.j2"]
    assert [name for name, text in templates.items()
            if "/media/" in text or "/static/" in text or "/.sitekit-errors/" in text] == []
    # nor the expressions that pick the files it serves (nor their list of extensions)
    assert "sitekit_layout.file_requests" in templates["nginx.conf.j2"]
    assert "sitekit_layout.upload_file" in templates["nginx.conf.j2"]
    assert "sitekit_layout.file_location" in templates["site.conf.j2"]
    assert "sitekit_layout.media_image_uri" in templates["site.conf.j2"]
    assert [name for name, text in templates.items() if "media_types" in text] == []


def test_nginx_types_the_stored_images_as_django_does():
    # nginx serves uploads with the types of its mime.types (the role's nginx_mime_types):
    # each extension Django stores has the type it is stored with there
    text = Path("/etc/nginx/mime.types").read_text()
    types = {ext: kind for kind, exts in re.findall(r"^\s*(\S+/\S+)\s+([^;]+);", text, re.M)
             for ext in exts.split()}
    layout = resolved().variables()["sitekit_layout"]
    assert {ext: types.get(ext) for ext in layout["media_types"]} == layout["media_types"]


def served(layout, request_):
    """The file nginx's map $sitekit_file picks for "<site> <status> <uri>", as its path
    (under file_root): the first pattern that matches, its $n replaced, else None."""
    for pattern, path in layout["file_requests"]:
        match = re.match(pattern, request_)
        if match:
            return re.sub(r"\$(\d)", lambda m, found=match: found.group(int(m.group(1))), path)
    return None


@pytest.mark.parametrize(("request_", "path"), [
    ("harbor 000 /media/harbor/a1b2.png", "/media/harbor/a1b2.png"),
    ("harbor 000 /media/harbor/2026/x.y.webp", "/media/harbor/2026/x.y.webp"),
    ("harbor 000 /media/harbor/a.JPG", None),  # stored names are lower case
    ("harbor 000 /media/harbor/a.svg", None),  # not an image Django stores
    ("harbor 000 /media/harbor/a.png.html", None),
    ("harbor 000 /media/harbor/.png", None),
    ("harbor 000 /media/meadow/a.png", None),  # another site's upload
    ("harbor 000 /media/harbor_old/a.png", None),
    ("harbor 000 /static/harbor/a.png", "/current/static/harbor/a.png"),
    ("harbor 000 /static/admin/css/base.css", "/current/static/admin/css/base.css"),
    ("harbor 000 /static/", None),
    # the unavailable pages: the site's own, only as the answer to its status
    ("harbor 503 /.sitekit-errors/503.html", "/current/errors/harbor/503.html"),
    ("meadow 504 /.sitekit-errors/504.html", "/current/errors/meadow/504.html"),
    ("harbor 413 /.sitekit-errors/413.html", "/current/errors/harbor/413.html"),
    ("harbor 000 /.sitekit-errors/503.html", None),  # asked for: not an error's answer
    ("harbor 503 /.sitekit-errors/504.html", None),
    ("harbor 503 /.sitekit-errors/x/503.html", None),
])
def test_the_published_expressions_pick_a_sites_own_files(request_, path):
    layout = resolved(current="/srv/sitekit/current",
                      media_root="/srv/sitekit/media").variables()["sitekit_layout"]
    # nginx's PCRE and Python's re read these the same: groups, \S, \d{3}, a backreference
    assert layout["file_root"] == "/srv/sitekit"
    assert served(layout, request_) == path
    # an upload's file, and only an upload's, is sent with the uploads' policy
    assert bool(path and re.match(layout["upload_file"], path)) == bool(
        path and request_.startswith("harbor 000 /media/"))
    uri = request_.split(" ", 2)[2]
    assert bool(re.match(layout["file_location"], uri)) == uri.startswith(
        ("/static/", "/media/", "/.sitekit-errors/"))
    assert bool(re.search(layout["media_image_uri"], uri)) == (
        uri.rsplit(".", 1)[-1] in layout["media_types"])


def test_the_files_are_under_the_deepest_directory_that_holds_them():
    # without a media directory (S3), the file location serves the release's files alone
    layout = resolved(current="/srv/sitekit/current", media_storage="s3",
                      s3_endpoint="http://10.0.0.5:8333",
                      s3_bucket="sitekit-media").variables()["sitekit_layout"]
    assert layout["file_root"] == "/srv/sitekit/current"
    assert layout["upload_file"] == ""
    assert served(layout, "harbor 000 /static/x.css") == "/static/x.css"
    assert served(layout, "harbor 000 /media/harbor/a.png") is None
    assert not re.match(layout["file_location"], "/media/harbor/a.png")
    # uploads elsewhere: under the directory that holds both
    layout = resolved(current="/srv/sitekit/current",
                      media_root="/data/media").variables()["sitekit_layout"]
    assert layout["file_root"] == "/"
    assert served(layout, "harbor 000 /media/harbor/a.png") == "/data/media/harbor/a.png"
    assert re.match(layout["upload_file"], "/data/media/harbor/a.png")
    assert not re.match(layout["upload_file"], "/srv/sitekit/current/static/media/a.png")


def test_s3_storage_resolves_each_sites_prefix_of_the_bucket_and_no_directory():
    built = resolved(media_storage="s3", s3_endpoint="http://10.0.0.5:8333",
                     s3_bucket="sitekit-media")
    harbor = built.sites[0]
    assert harbor["media_proxy"] == "http://10.0.0.5:8333/sitekit-media/harbor/"
    assert harbor["media_dir"] == ""
    assert built.variables()["sitekit_media_dirs"] == []
    env = model.master_env(built.masters[0], secret_key_base="k" * 40, shared=KEYS)
    assert env["SITEKIT_S3_ENDPOINT_URL"] == "http://10.0.0.5:8333"
    assert env["SITEKIT_S3_BUCKET"] == "sitekit-media"
    assert env["SITEKIT_S3_SECRET_KEY"] == "s" * 40
    assert "SITEKIT_MEDIA_ROOT" not in env
    # the credentials are secrets: never among the published facts
    assert "s" * 40 not in json.dumps(built.variables())
    assert {"SITEKIT_S3_ACCESS_KEY", "SITEKIT_S3_SECRET_KEY"} <= set(model.SECRET_KEYS)


def test_site_yml_stops_on_s3_without_a_storage_host_before_any_host_changes(
    inventories, tmp_path  # noqa: F811
):
    mine = inventories("""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.mine.test]
        """)
    root = tmp_path / "root"
    code, output = playbook(mine, REPO / "ansible" / "site.yml", "-e", f"sitekit_root={root}",
                            "-e", "sitekit_media_storage=s3")
    assert code != 0
    text = " ".join(output.split())
    assert "mine: field 'sitekit_s3_endpoint': 's3' needs the object store's URL" in text
    assert "mine: field 'sitekit_s3_access_key'" in text
    assert "nothing was changed on any host" in output
    assert not root.exists()
