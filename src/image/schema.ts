// Image tables (owned by the image service).
import type { Migration } from 'kysely/migration';

export interface ImageTables {}

export const imageMigrations: Record<string, Migration> = {};
