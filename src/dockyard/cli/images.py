"""Image commands: images, pull and build (both jobs, their log followed live)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.cli.output import ago, job_log, size_text, spinner

if TYPE_CHECKING:
    from dockyard.cli.session import Session
    from dockyard.client import Dockyard
    from dockyard.client.models import Job

GIT_PREFIXES = ("http://", "https://", "git://", "git@", "ssh://")


def images(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        found = list(dy.images.list())
    rows = [
        [
            ", ".join(i.tags) or "<none>",
            i.id.removeprefix("sha256:")[:12],
            ago(i.created),
            size_text(i.size),
            i.containers,
        ]
        for i in found
    ]
    session.show(found, ["tags", "id", "created", "size", "containers"], rows)
    return 0


def pull(args: argparse.Namespace, session: Session) -> int:
    with session.client() as dy:
        job = dy.images.pull(args.image, registry=args.registry)
        return follow_job(dy, job, f"pulling {args.image}")


def build(args: argparse.Namespace, session: Session) -> int:
    options = {}
    if args.dockerfile:
        options["dockerfile_path"] = args.dockerfile
    tags = args.tag or None
    with session.client() as dy:
        if args.source.startswith(GIT_PREFIXES):
            job = dy.builds.create(git=args.source, tags=tags, **options)
        else:
            with spinner(f"sending the context {args.source}"):
                job = dy.builds.create(path=Path(args.source), tags=tags, **options)
        return follow_job(dy, job, "building")


def follow_job(dy: Dockyard, job: Job, label: str) -> int:
    """The job's log, live (with a bar of its steps on a terminal); the image id on success,
    status 1 when it failed or was cancelled."""
    print(f"job {job.job_id}", file=sys.stderr)
    with job_log(label) as show:
        for line in dy.builds.follow(job.job_id):
            show(line)
    done = dy.builds.wait(job.job_id)
    if done.status != "succeeded":
        print(f"dockyard: {done.kind} {done.job_id} {done.status}", file=sys.stderr)
        return 1
    print(done.image_id or done.digest or done.job_id)
    return 0
