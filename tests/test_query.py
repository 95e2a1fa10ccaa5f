"""The query language: parsing, errors, and SQL and Python giving the same answers."""

from __future__ import annotations

import pytest

from motionlib.core.errors import InputError
from motionlib.index.query import Query, parse_sort, parse_term
from tests.conftest import assert_one_line_error, copy_library, invoke, invoke_json


@pytest.mark.parametrize("text, words", [
    ("foo:1", "unknown field 'foo'"), ("score>abc", "needs a number"), ("fps>=", "missing a value"),
    ("name>b", "is text"), ("is:weird", "'is' takes"), ("created:last-week", "date prefix"),
    ("<>", "malformed"), ("-score>", "missing a value"),
])
def test_malformed_terms_say_what_is_wrong(text, words):
    with pytest.raises(InputError, match=words):
        Query.parse([text])


def test_terms():
    assert parse_term("-tag:draft").negate and parse_term("-tag:draft").field == "tag"
    assert parse_term("wave").field == "" and parse_term("score>=0.7").op == ">="
    assert str(Query.parse("tag:dance score>0.7 -tag:draft")) == "tag:dance score>0.7 -tag:draft"
    assert str(Query.parse(["tag:dance score>0.7", "-tag:draft"])) == "tag:dance score>0.7 -tag:draft"
    assert parse_sort("-score,name") == [("overall", True), ("name", False)]
    assert parse_sort("duration:desc") == [("duration", True)]
    with pytest.raises(InputError, match="unknown field"):
        parse_sort("tag")


@pytest.fixture(scope="module")
def varied_library(demo_library, tmp_path_factory):
    """The demo library plus derived versions, tags and another name (made through the library;
    the tests only read it)."""
    from motionlib.library import Library
    from motionlib.processing import ops

    root = copy_library(demo_library[0], tmp_path_factory.mktemp("query") / "lib")
    lib = Library(root)
    lib.derive("demo", ops.smooth)  # demo@2
    lib.derive("demo@1", lambda m: ops.trim(m, 0.5, 3.0))  # demo@3
    lib.derive("demo@2", ops.loop, name="wave-loop")  # wave-loop@1
    lib.derive("demo@1", lambda m: ops.retime(m, fps=24.0))  # demo@4
    lib.tag("demo@2", ["dance", "draft"])
    lib.tag("wave-loop", ["dance"])
    lib.close()
    return root


QUERIES = [
    "tag:dance", "-tag:draft", "tag:dance -tag:draft", "score>0.6", "jitter<0.5", "fps>=30", "fps<25",
    "duration<6", "name:wave*", "name:demo", "wave", "DEMO", "is:latest", "is:derived", "is:original",
    "op:smooth,loop", "parent:demo@1", "frames>100 score>0.4", "version:2", "version!=1",
    "tag:dan*", "created>=2000-01", "created:2026", "created<2000", "tag:sample,dance", "skeleton:mediapipe_pose_33",
    "source:demo.mp4", "-name:demo",
]


@pytest.mark.parametrize("text", QUERIES)
def test_sql_and_python_agree(varied_library, text):
    from motionlib.library import Library

    lib = Library(varied_library)
    everything = lib.list()
    newest = {}
    for r in everything:
        newest[r.name] = max(newest.get(r.name, 0), r.version)
    q = Query.parse(text)
    by_sql = [r.ref for r in lib.list(query=q)]
    by_python = [r.ref for r in everything if q.matches(r, latest=lambda r: r.version == newest[r.name])]
    assert by_sql == by_python, text


def test_expected_answers(varied_library):
    """``motionlib list`` (in this process): its terms, --sort and --limit."""

    def refs(*terms, **kw):
        return [r["ref"] for r in invoke_json("list", *terms, library=varied_library, **kw)]

    assert refs("tag:dance") == ["demo@2", "wave-loop@1"]
    assert refs("tag:dance", "-tag:draft") == ["wave-loop@1"]
    assert refs("is:latest") == ["demo@4", "wave-loop@1"]
    assert refs("name:wave*") == ["wave-loop@1"]
    assert refs("fps<25") == ["demo@4"]
    assert refs("op:trim") == ["demo@3"]
    assert refs("--sort", "-duration", "--limit", "2") == ["demo@1", "demo@2"]
    assert refs("--sort", "duration") [0] == "wave-loop@1"
    smooth = invoke_json("show", "demo@2", library=varied_library)
    assert refs(f"jitter>{smooth['scores']['jitter'] - 0.001}") == [
        r["ref"] for r in invoke_json("list", library=varied_library)
        if r["scores"]["jitter"] is not None and r["scores"]["jitter"] > smooth["scores"]["jitter"] - 0.001
    ]


def test_list_errors_are_one_line(varied_library):
    for args in (("foo:1",), ("score>x",), ("--sort", "nope"), ("--limit", "-1")):
        assert_one_line_error(invoke("list", *args, library=varied_library))


def test_listings_stream_json_jsonl_and_a_table_with_every_record(varied_library):
    import json as _json

    lib = varied_library
    everything = invoke_json("list", "--json", library=lib)
    lines = invoke("list", "--jsonl", library=lib).stdout.splitlines()
    assert [_json.loads(line) for line in lines] == everything and len(everything) == 5
    assert invoke("list", "--json", "tag:nothing-has-this", library=lib).stdout == "[]\n"
    assert invoke("list", "--jsonl", "tag:nothing-has-this", library=lib).stdout == ""
    table = invoke("list", "--sort", "-score", library=lib).stdout.splitlines()
    assert table[0].split()[:2] == ["motion", "duration"] and len(table) == 1 + len(everything)
    by_score = sorted(everything, key=lambda r: -(r["scores"]["overall"] or -1))
    assert [line.split()[0] for line in table[1:]] == [r["ref"] for r in by_score]
    assert_one_line_error(invoke("list", "--json", "--jsonl", library=lib), "not both")
    assert invoke("identity", "list", "--jsonl", library=lib).stdout == ""
    assert invoke("renders", "--json", library=lib).stdout == "[]\n"


# the SQL-level answers on each backend (SQLite and PostgreSQL: index.dialect), over a synthetic
# index with upper-case names, NULL scores and tags; globs with sets and single characters too
BACKEND_QUERIES = QUERIES + [
    "name:Wave*", "name:[wb]*", "name:[^w]*", "name:*-1?", "name:wave-?", "WAVE", "ave-1", "tag:DANCE",
    "tag:d*,s*", "-tag:d*", "score>0.3 -tag:draft", "op:smooth", "occlusion<=0.25", "overall:0.5,0.25",
    "overall!=0.5", "created:2026-01-03", "created<2026-01-10", "name:wave-1,bow-2", "name!=wave-1", "%", "_",
    "name:*%*", "-is:latest",
]


@pytest.fixture
def synthetic_backend(index_target):
    from motionlib.index import open_index
    from tests.test_index import synthetic_index

    index = open_index(synthetic_index(index_target, 120, seed=3))
    yield index
    index.close()


def test_sql_and_python_agree_on_each_backend(synthetic_backend):
    with synthetic_backend.reader() as r:
        everything = r.list()
        newest = {}
        for rec in everything:
            newest[rec.name] = max(newest.get(rec.name, 0), rec.version)
        for text in BACKEND_QUERIES:
            q = Query.parse(text)
            by_sql = [x.ref for x in r.list(query=q)]
            by_python = [x.ref for x in everything if q.matches(x, latest=lambda x: x.version == newest[x.name])]
            assert by_sql == by_python, text
            assert r.count(q) == len(by_sql), text
        q = Query.parse("like:wave-1 tag:dance")
        q.resolve_like(lambda _name: [everything[0].id, everything[1].id])
        assert [x.ref for x in r.list(query=q)] == [x.ref for x in everything[:2] if "dance" in x.tags]
        q = Query.parse("-like:nothing")
        q.resolve_like(lambda _name: [])
        assert len(r.list(query=q)) == len(everything)
        for sort in ("-score", "score", "-created,name", "-duration,-score"):
            assert [x.ref for x in r.list(sort=sort)] == [x.ref for x in r.page(None, sort, limit=10_000)], sort
