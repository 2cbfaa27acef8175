"""active model setting, re-embedding jobs and per-image embedding markers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'app_settings',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_table(
        'reembed_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('model_id', sa.String(length=64), nullable=False),
        sa.Column('from_model', sa.String(length=64), nullable=False),
        sa.Column('collection_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=True),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('processed', sa.Integer(), nullable=False),
        sa.Column('faces', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('withheld', sa.Integer(), nullable=False),
        sa.Column('switched', sa.Boolean(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['collection_id'], ['collections.id']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'image_embeddings',
        sa.Column('image_id', sa.Integer(), nullable=False),
        sa.Column('model_id', sa.String(length=64), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=True),
        sa.Column('faces', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('embedded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['job_id'], ['reembed_jobs.id']),
        sa.PrimaryKeyConstraint('image_id', 'model_id'),
    )


def downgrade() -> None:
    op.drop_table('image_embeddings')
    op.drop_table('reembed_jobs')
    op.drop_table('app_settings')
