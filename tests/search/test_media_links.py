"""Media links as the API signs them: over the path and its query, stable within the hour, bare without a key."""

from urllib.parse import parse_qsl, urlsplit

from search.media_links import MediaLinks, is_valid


def query(link: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(link).query)


def test_a_frame_link_is_signed_over_its_time_and_carries_no_key():
    link = MediaLinks("sesame").frame("abc", 1.5)
    path, pairs = urlsplit(link).path, query(link)
    assert path == "/media/abc/frame" and dict(pairs)["t"] == "1.5000" and "sesame" not in link
    assert is_valid("sesame", path, pairs)
    assert is_valid("sesame", path, pairs[::-1])  # in any order
    assert not is_valid("sesame", path, [(k, "2.0000" if k == "t" else v) for k, v in pairs])  # it signs t
    assert not is_valid("sesame", path, [p for p in pairs if p[0] != "t"])
    assert not is_valid("sesame", "/media/abd/frame", pairs)  # and the path
    assert not is_valid("other", path, pairs)


def test_links_are_stable_so_a_redrawn_page_fetches_nothing_again():
    links = MediaLinks("sesame")
    assert links.video("abc") == links.video("abc") and links.thumbnail("abc") == links.thumbnail("abc")


def test_a_video_link_starts_at_a_moment_by_a_fragment_outside_the_signature():
    link = MediaLinks("sesame").video("abc", start=2.25)
    assert link.endswith("#t=2.250")
    assert is_valid("sesame", "/media/abc/video", query(link.partition("#")[0]))


def test_without_a_key_links_are_bare_paths():
    links = MediaLinks("")
    assert links.video("abc") == "/media/abc/video" and links.thumbnail("abc") == "/media/abc/thumbnail"
    assert links.frame("abc", 0.5) == "/media/abc/frame?t=0.5000"
    assert links.video("abc", start=1.0) == "/media/abc/video#t=1.000"
