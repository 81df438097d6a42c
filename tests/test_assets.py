"""The light tablet page: static files under content-hashed names kept a year, sent compressed
to a browser that accepts it, pages compressed too; downloads and no-store left as they are."""

import gzip
import re

import brotli
import pytest
from factories import make_staff
from routes import FLOOR_NURSE, bearer, make_floor

from srs.auth.models import Role

STATIC = re.compile(r'(?:src|href|data-sound-[a-z]+)="(/static/[^"]+)"')
YEAR = "public, max-age=31536000, immutable"
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}


def decode(response) -> bytes:
    body = response.get_data()
    return {"br": brotli.decompress, "gzip": gzip.decompress}.get(
        response.headers.get("Content-Encoding"), lambda b: b)(body)


@pytest.fixture
def floor_page(client, auth):
    floor = make_floor()
    assert auth.login(FLOOR_NURSE).status_code == 302
    return client.get(f"/sites/{floor.site.slug}/floor")


def test_the_floor_names_every_static_file_by_its_content(app, client, floor_page):
    urls = STATIC.findall(floor_page.get_data(as_text=True))
    names = {url.rsplit("/", 1)[1] for url in urls}
    assert {re.sub(r"\.[0-9a-f]{12}\.", ".", name) for name in names} >= {
        "style.css", "early.js", "htmx-2.0.11.min.js", "socket.io-4.8.4.min.js", "srs.js",
        "alarm-high.wav", "alarm-medium.wav", "alarm-low.wav"}
    for url in urls:
        plain = re.sub(r"\.[0-9a-f]{12}(\.[a-z]+)$", r"\1", url)
        assert plain != url, f"{url} has no content hash"
        on_disk = (app.static_folder + plain.removeprefix("/static")).encode()
        with open(on_disk, "rb") as file:
            content = file.read()
        for accept in ("br", "gzip", "identity"):
            response = client.get(url, headers={"Accept-Encoding": accept})
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == YEAR, url
            assert response.headers.get("Content-Encoding", "identity") == accept, url
            assert decode(response) == content, url


def test_scripts_and_sounds_go_several_times_smaller(client, floor_page):
    urls = STATIC.findall(floor_page.get_data(as_text=True))
    script = next(u for u in urls if "/srs." in u)
    sound = next(u for u in urls if "alarm-high" in u)
    for url, at_least in ((script, 3), (sound, 10)):
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        packed = client.get(url, headers=BROWSER)
        assert len(plain.get_data()) >= at_least * len(packed.get_data()), url
        assert packed.headers["Vary"] == "Accept-Encoding"
        # Asked again with what the browser holds: nothing to send.
        again = client.get(url, headers={**BROWSER, "If-None-Match": packed.headers["ETag"]})
        assert again.status_code == 304


def test_a_changed_file_gets_a_new_name_and_the_old_name_is_no_longer_kept(
        app, client, monkeypatch, tmp_path):
    (tmp_path / "panel.css").write_text(".panel { color: red; }\n" * 40)
    monkeypatch.setattr(app, "static_folder", str(tmp_path))
    monkeypatch.setattr(app.extensions["srs_assets"], "folder", str(tmp_path))
    with app.test_request_context():
        from flask import url_for

        first = url_for("static", filename="panel.css")
        (tmp_path / "panel.css").write_text(".panel { color: blue; }\n" * 41)
        second = url_for("static", filename="panel.css")
    assert re.fullmatch(r"/static/panel\.[0-9a-f]{12}\.css", first)
    assert second != first
    current = client.get(second, headers=BROWSER)
    assert current.headers["Cache-Control"] == YEAR
    assert b"blue" in decode(current)
    # A page from before the change asks for the old name: it gets the file as it is now,
    # and keeps it no longer than that.
    stale = client.get(first, headers=BROWSER)
    assert stale.status_code == 200 and b"blue" in decode(stale)
    assert stale.headers["Cache-Control"] == "no-cache"
    plain = client.get("/static/panel.css")
    assert plain.status_code == 200 and plain.headers["Cache-Control"] == "no-cache"
    assert b"blue" in decode(plain)
    assert client.get("/static/missing.0123456789ab.css").status_code == 404


def test_the_floor_page_is_sent_compressed_and_still_never_kept(client, floor_page, auth):
    html = floor_page.get_data()
    for encoding, unpack in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        response = client.get(floor_page.request.path, headers={"Accept-Encoding": encoding})
        assert response.headers["Content-Encoding"] == encoding
        assert response.headers["Cache-Control"] == "no-store"
        assert len(response.get_data()) * 4 < len(html)
        page = unpack(response.get_data()).decode()
        assert "F-OBSV-1980" in page  # the client in after-care, as the page shows it


def test_downloads_are_sent_as_they_are_and_never_kept(client, auth):
    floor = make_floor()
    reviewer = make_staff(floor.site, role=Role.REVIEWER)
    export = client.get(f"/api/v1/sites/{floor.site.id}/incidents.csv",
                        headers={**bearer(reviewer), **BROWSER})
    admin = make_staff(floor.site, role=Role.ADMIN)
    assert auth.login(admin.username).status_code == 302
    streamed = client.get(f"/sites/{floor.site.slug}/audit.csv", headers=BROWSER)
    for response in (export, streamed):
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert "Content-Encoding" not in response.headers
        assert response.headers["Cache-Control"] == "no-store"
        assert response.get_data(as_text=True).splitlines()[0].count(",") >= 2
