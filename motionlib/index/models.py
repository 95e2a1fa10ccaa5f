"""SQLModel tables. They mirror migrations.MIGRATIONS exactly (a test compares them)."""

from __future__ import annotations

from typing import Optional

from sqlmodel import Field, SQLModel


class MotionRow(SQLModel, table=True):
    __tablename__ = "motion"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str
    version: int
    created: str
    duration: float
    fps: float
    frames: int
    width: int
    height: int
    skeleton: str
    source_name: Optional[str] = None
    source_sha256: Optional[str] = None
    source_size: Optional[int] = None
    source_path: Optional[str] = None
    estimator: str
    settings_digest: str
    parent: Optional[str] = None
    operation: str = "ingest"
    op_params: str = "{}"
    store_path: str
    overall: Optional[float] = None
    occlusion: Optional[float] = None
    occlusion_raw: Optional[float] = None
    jitter: Optional[float] = None
    jitter_raw: Optional[float] = None
    framing: Optional[float] = None
    framing_raw: Optional[float] = None
    warnings: str = "[]"


class Tag(SQLModel, table=True):
    __tablename__ = "tag"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str


class MotionTag(SQLModel, table=True):
    __tablename__ = "motion_tag"

    motion_id: int = Field(foreign_key="motion.id", primary_key=True)
    tag_id: int = Field(foreign_key="tag.id", primary_key=True)


class NameCounter(SQLModel, table=True):
    __tablename__ = "name_counter"

    name: str = Field(primary_key=True)
    last_version: int


class IdentityRow(SQLModel, table=True):
    __tablename__ = "identity"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str
    created: str
    file_name: str
    sha256: str
    path: str
    format: str
    width: int
    height: int
    size_bytes: int
    body: str
    skeleton: str
    pose: str
    estimator: str
    warnings: str = "[]"


class RenderRow(SQLModel, table=True):
    __tablename__ = "render"

    id: Optional[int] = Field(default=None, primary_key=True)
    created: str
    finished: Optional[str] = None
    status: str
    pid: Optional[int] = None
    motion_ref: str
    motion_store: str
    identity_name: str
    identity_sha256: str
    backend: str
    models: str = "{}"
    params: str = "{}"
    seed: int
    timings: str = "{}"
    output: str
    output_sha256: Optional[str] = None
    error: Optional[str] = None
    campaign: Optional[str] = None
