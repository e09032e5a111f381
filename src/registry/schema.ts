// The registry's records (migrations 07xx). The bytes of blobs, manifests and
// upload chunks are objects of the object store, in the internal container of
// the repository's project (storage.ts); these rows say what exists where.
//
// A repository belongs to a project and is named by its path inside it (the
// client writes `<project name or id>/<path>`). Blobs are kept once per
// project (`registry_blobs`), and a repository sees the blobs linked to it
// (pushed to it, mounted into it, or referenced by one of its manifests).
// Manifests are rows per repository (the bytes once per project), with the
// digests they reference (`registry_manifest_refs`: what garbage collection
// keeps) and the subject they name (the referrers API).
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

export interface RegistryTables {
  /** The key that signs the registry's bearer tokens (one row, `token`), shared by every replica. */
  registry_keys: { name: string; secret: string; created_at: string };
  registry_repositories: {
    id: string; project_id: string; path: string;
    /** 1: anyone may pull, without credentials (set by PUT /v2/_stratus/repositories/...). */
    public: number;
    created_at: string; updated_at: string;
  };
  /** `created_at`: when the blob was stored or last referenced by a manifest push (garbage collection's grace counts from it). */
  registry_blobs: { project_id: string; digest: string; size: number; created_at: string };
  registry_repository_blobs: { repository_id: string; digest: string; created_at: string };
  registry_manifests: {
    repository_id: string; digest: string; media_type: string; size: number;
    /** The manifest's artifactType, else (an image manifest) its config's mediaType; null for an index without one. */
    artifact_type: string | null;
    /** The digest the manifest's `subject` names, if any. */
    subject: string | null;
    /** The manifest's annotations as JSON, for the referrers list; null when none. */
    annotations: string | null;
    created_at: string;
  };
  /** What a manifest references: blobs (config, layers) and manifests (an index's). */
  registry_manifest_refs: { repository_id: string; digest: string; child: string; kind: string };
  registry_tags: {
    repository_id: string; tag: string; digest: string; updated_at: string;
    /** The Glance image made for the tag (images.ts), null when none (0701). */
    image_id: string | null;
  };
  /** Blob upload sessions: chunks received so far are objects `uploads/<id>/<n>`. */
  registry_uploads: { id: string; repository_id: string; project_id: string; size: number; parts: number; created_at: string; updated_at: string };
}

const text = 'text' as const;

export const registryMigrations: Record<string, Migration> = {
  '0700_registry': {
    async up(db: Kysely<any>) {
      const s = db.schema;
      await s.createTable('registry_keys')
        .addColumn('name', text, (c) => c.primaryKey()).addColumn('secret', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).execute();
      await s.createTable('registry_repositories')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('project_id', text, (c) => c.notNull())
        .addColumn('path', text, (c) => c.notNull()).addColumn('public', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .addUniqueConstraint('registry_repositories_name', ['project_id', 'path']).execute();
      await s.createIndex('registry_repositories_public').on('registry_repositories').columns(['public', 'project_id']).execute();
      await s.createTable('registry_blobs')
        .addColumn('project_id', text, (c) => c.notNull()).addColumn('digest', text, (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull()).addColumn('created_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_blobs_pk', ['project_id', 'digest']).execute();
      await s.createTable('registry_repository_blobs')
        .addColumn('repository_id', text, (c) => c.notNull()).addColumn('digest', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_repository_blobs_pk', ['repository_id', 'digest']).execute();
      await s.createIndex('registry_repository_blobs_digest').on('registry_repository_blobs').column('digest').execute();
      await s.createTable('registry_manifests')
        .addColumn('repository_id', text, (c) => c.notNull()).addColumn('digest', text, (c) => c.notNull())
        .addColumn('media_type', text, (c) => c.notNull()).addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('artifact_type', text).addColumn('subject', text).addColumn('annotations', text)
        .addColumn('created_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_manifests_pk', ['repository_id', 'digest']).execute();
      await s.createIndex('registry_manifests_subject').on('registry_manifests').columns(['repository_id', 'subject']).execute();
      await s.createIndex('registry_manifests_digest').on('registry_manifests').column('digest').execute();
      await s.createTable('registry_manifest_refs')
        .addColumn('repository_id', text, (c) => c.notNull()).addColumn('digest', text, (c) => c.notNull())
        .addColumn('child', text, (c) => c.notNull()).addColumn('kind', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_manifest_refs_pk', ['repository_id', 'digest', 'child']).execute();
      await s.createIndex('registry_manifest_refs_child').on('registry_manifest_refs').column('child').execute();
      await s.createTable('registry_tags')
        .addColumn('repository_id', text, (c) => c.notNull()).addColumn('tag', text, (c) => c.notNull())
        .addColumn('digest', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_tags_pk', ['repository_id', 'tag']).execute();
      await s.createIndex('registry_tags_digest').on('registry_tags').columns(['repository_id', 'digest']).execute();
      await s.createTable('registry_uploads')
        .addColumn('id', text, (c) => c.primaryKey()).addColumn('repository_id', text, (c) => c.notNull())
        .addColumn('project_id', text, (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull()).addColumn('parts', 'integer', (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull()).addColumn('updated_at', text, (c) => c.notNull()).execute();
      await s.createIndex('registry_uploads_created').on('registry_uploads').column('created_at').execute();
    },
  },
  '0701_registry_tag_images': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('registry_tags').addColumn('image_id', text).execute();
    },
  },
};
