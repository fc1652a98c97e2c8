"""The engine's build/pull/push streams as Progress, over messages recorded from a real
engine (20.10) and a real registry (tests/unit/recorded/engine/images/)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from dockyard.adapters.engine.images import build_params, image_info
from dockyard.adapters.engine.progress import (
    JsonMessages,
    build_progress,
    is_auth_failure,
    registry_auth_error,
    registry_auth_header,
    scrub,
    transfer_progress,
)
from dockyard.domain.images.ports import BuildSpec, Progress, ProgressKind, RegistryAuth

RECORDED = Path(__file__).parent / "recorded" / "engine" / "images"
K = ProgressKind


def recorded(name: str) -> bytes:
    return (RECORDED / f"{name}.jsonl").read_bytes()


def parsed(name: str, parse: object) -> list[Progress]:
    out = []
    for message in JsonMessages().feed(recorded(name)):
        progress = parse(message)  # type: ignore[operator]
        if progress is not None:
            out.append(progress)
    return out


def test_a_build_stream_is_steps_logs_and_the_image_id() -> None:
    progress = parsed("build", build_progress)
    steps = [(p.step, p.total, p.text) for p in progress if p.kind == K.STEP]
    assert steps[0] == (1, 5, "FROM dockyard-test/busybox:latest")
    assert steps[2] == (3, 5, "RUN echo $GREETING > /greeting")
    assert [s[0] for s in steps] == [1, 2, 3, 4, 5]
    logs = [p.text for p in progress if p.kind == K.LOG]
    assert " ---> Running in 597681ee1c1f" in logs
    assert "" not in logs and all(not t.endswith("\n") for t in logs)  # bare newlines dropped
    (result,) = [p for p in progress if p.kind == K.RESULT]
    assert result.image_id == (
        "sha256:305def39d6af6c7df6a8cba5aa2c2da6474f5a4a7400de0cebb95e99c6ed0d5a"
    )
    assert logs[-1] == "Successfully tagged ia-rec/test:1"


def test_a_failing_build_ends_with_an_error_after_its_step() -> None:
    progress = parsed("buildfail", build_progress)
    assert [p.step for p in progress if p.kind == K.STEP] == [1, 2]
    assert progress[-1] == Progress(
        K.ERROR, text="The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    )


def test_a_push_stream_has_layers_and_the_digest() -> None:
    progress = parsed("push", transfer_progress)
    assert progress[0] == Progress(
        K.STATUS, text="The push refers to repository [127.0.0.1:5000/ia-rec/test]"
    )
    counted = [p for p in progress if p.kind == K.LAYER and p.current is not None]
    assert (
        Progress(K.LAYER, text="Pushing", layer="81283f64324e", current=19968, total=1984298)
        in counted
    )
    assert Progress(K.LAYER, text="Pushed", layer="c6de7aac10c3") in progress
    assert progress[-1] == Progress(
        K.RESULT, digest="sha256:dab74b4871a69beba841a5c89ae1cd48c74311d0ceb351c3f0bb20cb4c318c4e"
    )


def test_a_pull_stream_has_layers_and_status_lines() -> None:
    progress = parsed("pull", transfer_progress)
    assert progress[0] == Progress(K.STATUS, text="1: Pulling from ia-rec/test")
    assert (
        Progress(K.LAYER, text="Downloading", layer="6c0de37123b9", current=114, total=114)
        in progress
    )
    assert Progress(K.LAYER, text="Already exists", layer="6c4d011fd3e7") in progress
    assert progress[-1].kind == K.STATUS and "Downloaded newer image" in progress[-1].text


def test_a_refused_push_is_an_error_that_reads_as_an_auth_failure() -> None:
    progress = parsed("pushbad", transfer_progress)
    assert progress[-1] == Progress(K.ERROR, text="unauthorized: authentication required")
    assert is_auth_failure(progress[-1].text)
    assert not is_auth_failure("manifest unknown")


@given(st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=40))
def test_messages_come_out_whole_whatever_the_chunks(cuts: list[int]) -> None:
    data = recorded("build") + recorded("push")
    expected = JsonMessages().feed(data)
    decoder, got, pos = JsonMessages(), [], 0
    for size in cuts:
        got += decoder.feed(data[pos : pos + size])
        pos += size
    got += decoder.feed(data[pos:])
    assert got == expected and len(expected) == 26 + 11


def test_messages_without_newlines_and_junk_lines() -> None:
    decoder = JsonMessages()
    assert decoder.feed(b'{"a": 1}{"b": 2}\r\nnot json\n[1]\n{"c"') == [{"a": 1}, {"b": 2}]
    assert decoder.feed(b": 3}\n") == [{"c": 3}]


def test_the_auth_header_is_base64url_json_and_never_in_an_error() -> None:
    auth = RegistryAuth("127.0.0.1:5000", "amy", "s3cr/t+?=")
    decoded = json.loads(base64.urlsafe_b64decode(registry_auth_header(auth)))
    assert decoded == {
        "username": "amy",
        "password": "s3cr/t+?=",
        "serveraddress": "127.0.0.1:5000",
    }
    assert base64.urlsafe_b64decode(registry_auth_header(None)) == b"{}"
    assert "s3cr" not in repr(auth)
    assert scrub("denied for amy:s3cr/t+?=", auth) == "denied for amy:***"
    error = registry_auth_error("127.0.0.1:5000", "bad password s3cr/t+?=", auth)
    assert error.kind == "auth_error" and "s3cr" not in error.message


def test_build_parameters_are_the_classic_builders() -> None:
    spec = BuildSpec(
        Path("/x.tar"),
        "sub/Dockerfile",
        ("a/b:1", "a/b:2"),
        build_args={"K": "v"},
        target="final",
        labels={"l": "1"},
        no_cache=True,
        network_mode="dockyard-build",
        memory=512 * 1024**2,
        cpus=1.5,
    )
    params = build_params(spec)
    assert ("version", "1") in params and ("rm", "true") in params and ("forcerm", "true") in params
    assert [v for k, v in params if k == "t"] == ["a/b:1", "a/b:2"]
    as_dict = dict(params)
    assert json.loads(as_dict["buildargs"]) == {"K": "v"}
    assert as_dict["target"] == "final" and as_dict["networkmode"] == "dockyard-build"
    assert as_dict["nocache"] == "true" and as_dict["pull"] == "false"
    assert as_dict["cpuquota"] == "150000" and as_dict["cpuperiod"] == "100000"
    assert as_dict["memory"] == str(512 * 1024**2)
    assert "remote" not in as_dict


def test_an_inspect_answer_as_image_info() -> None:
    info = image_info(
        {
            "Id": "sha256:abc",
            "RepoTags": ["a/b:1", "<none>:<none>"],
            "RepoDigests": ["a/b@sha256:def"],
            "Size": 42,
            "Created": "2026-11-28T09:12:13.123456789Z",
            "Architecture": "amd64",
            "Config": {"ExposedPorts": {"8080/tcp": {}, "53/udp": {}}, "Labels": {"x": "y"}},
        }
    )
    assert info.tags == ("a/b:1",) and info.digests == ("a/b@sha256:def",)
    assert info.exposed_ports == ("53/udp", "8080/tcp") and info.labels == {"x": "y"}
    assert info.created is not None and info.created.year == 2026 and info.created.tzinfo
