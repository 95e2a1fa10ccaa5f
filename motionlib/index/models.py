"""SQLModel tables. They mirror migrations.MIGRATIONS exactly (a test compares them).

Integers are BigInteger: SQLite's are 64-bit, and on PostgreSQL the migrations make them BIGINT;
SQLAlchemy's PostgreSQL driver casts a parameter to its column's type (a source's size in bytes
or a seed would overflow INTEGER)."""

from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel


class MotionRow(SQLModel, table=True):
    __tablename__ = "motion"

    id: Optional[int] = Field(default=None, primary_key=True, sa_type=BigInteger)
    name: str
    version: int = Field(sa_type=BigInteger)
    created: str
    duration: float
    fps: float
    frames: int = Field(sa_type=BigInteger)
    width: int = Field(sa_type=BigInteger)
    height: int = Field(sa_type=BigInteger)
    skeleton: str
    source_name: Optional[str] = None
    source_sha256: Optional[str] = None
    source_size: Optional[int] = Field(default=None, sa_type=BigInteger)
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

    id: Optional[int] = Field(default=None, primary_key=True, sa_type=BigInteger)
    name: str


class MotionTag(SQLModel, table=True):
    __tablename__ = "motion_tag"

    motion_id: int = Field(foreign_key="motion.id", primary_key=True, sa_type=BigInteger)
    tag_id: int = Field(foreign_key="tag.id", primary_key=True, sa_type=BigInteger)


class NameCounter(SQLModel, table=True):
    __tablename__ = "name_counter"

    name: str = Field(primary_key=True)
    last_version: int = Field(sa_type=BigInteger)


class IdentityRow(SQLModel, table=True):
    __tablename__ = "identity"

    id: Optional[int] = Field(default=None, primary_key=True, sa_type=BigInteger)
    name: str
    created: str
    file_name: str
    sha256: str
    path: str
    format: str
    width: int = Field(sa_type=BigInteger)
    height: int = Field(sa_type=BigInteger)
    size_bytes: int = Field(sa_type=BigInteger)
    body: str
    skeleton: str
    pose: str
    estimator: str
    warnings: str = "[]"


class RenderRow(SQLModel, table=True):
    __tablename__ = "render"

    id: Optional[int] = Field(default=None, primary_key=True, sa_type=BigInteger)
    created: str
    finished: Optional[str] = None
    status: str
    pid: Optional[int] = Field(default=None, sa_type=BigInteger)
    motion_ref: str
    motion_store: str
    identity_name: str
    identity_sha256: str
    backend: str
    models: str = "{}"
    params: str = "{}"
    seed: int = Field(sa_type=BigInteger)
    timings: str = "{}"
    output: str
    output_sha256: Optional[str] = None
    error: Optional[str] = None
    campaign: Optional[str] = None
