"""Identities: pictures of the people motions are rendered onto, kept by content, with the
person's pose found once when the picture is added."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from motionlib.core.errors import InputError
from motionlib.core.names import validate_name
from motionlib.library.base import LibraryBase
from motionlib.library.paths import now
from motionlib.store.files import content_path, hash_file

if TYPE_CHECKING:
    from motionlib.index.reader import IdentityRecord


class Identities(LibraryBase):
    def add_identity(self, path: str | os.PathLike, *, name: str | None = None,
                     person: int | None = None) -> "IdentityRecord":
        """Check an image, find the person's pose, keep a content-addressed copy, index it. A
        picture of several people is refused unless ``person`` (1 = leftmost) chooses one."""
        from motionlib.ingest.image import detect_pose, load_image

        path = Path(path)
        name = validate_name(name if name is not None else path.stem)
        with self.index.reader() as r:
            if r.identities(name):
                raise InputError(f"an identity named {name!r} exists already (remove it first, or choose another name)")
        img = load_image(path)
        pose = detect_pose(img.image, path.name, person=person)
        with self.staging() as staging:
            copy = hash_file(path, staging)
            rel = (Path("identities") / content_path(copy.sha256, img.ext)).as_posix()
            h, w = img.image.shape[:2]
            warnings = list(pose.warnings) + (["EXIF orientation applied"] if img.exif_rotated else [])
            with self.index.write() as wr:
                wr.insert_identity(
                    name=name, created=now(), file_name=path.name, sha256=copy.sha256, path=rel, format=img.format,
                    width=w, height=h, size_bytes=copy.size, body=pose.body, skeleton="mediapipe_pose_33",
                    pose=json.dumps(pose.to_json()), estimator=pose.estimator, warnings=json.dumps(warnings),
                )
                self.files.put_file(copy.copy, rel)
        return self.get_identity(name)

    def remove_identity(self, name: str) -> "IdentityRecord":
        """Remove an identity; its picture goes too unless another identity uses it."""
        record = self.get_identity(name)
        with self.index.write() as w:
            still_used = w.delete_identity(record.id, record.sha256)
        if not still_used:
            self.files.remove_file(record.path)
        return record
