// The service catalog, kept in memory: tokens carry it and validation must not
// read the database. Catalog writes call invalidate(); other replicas reload on
// their sync tick.
import type { Db } from '../db/database.ts';

export interface CatalogEndpoint { id: string; interface: string; region: string | null; region_id: string | null; url: string }
export interface CatalogEntry { id: string; type: string; name: string; endpoints: CatalogEndpoint[] }

const PLACEHOLDER = /[$%]\((project_id|tenant_id)\)s/;
const PLACEHOLDERS = /[$%]\((project_id|tenant_id)\)s/g;

export class CatalogCache {
  private entries: CatalogEntry[] = [];
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  async reload(): Promise<void> {
    const services = await this.db.selectFrom('identity_services').selectAll().where('enabled', '=', 1).orderBy('type').execute();
    const endpoints = await this.db.selectFrom('identity_endpoints').selectAll().where('enabled', '=', 1).orderBy('id').execute();
    this.entries = services.map((s) => ({
      id: s.id,
      type: s.type,
      name: s.name,
      endpoints: endpoints.filter((e) => e.service_id === s.id).map((e) => ({
        id: e.id, interface: e.interface, region: e.region_id, region_id: e.region_id, url: e.url,
      })),
    }));
  }

  invalidate(): Promise<void> {
    return this.reload();
  }

  get(): CatalogEntry[] {
    return this.entries;
  }

  /**
   * The catalog as a token scoped to `projectId` (null: no project) sees it:
   * Keystone's `$(project_id)s` / `$(tenant_id)s` (and `%(...)s`) replaced by
   * the project's id; an endpoint whose URL needs a project a token has not is
   * left out, as Keystone leaves it out.
   */
  forProject(projectId: string | null): CatalogEntry[] {
    if (!this.entries.some((e) => e.endpoints.some((p) => PLACEHOLDER.test(p.url)))) return this.entries;
    return this.entries.map((e) => ({
      ...e,
      endpoints: e.endpoints.flatMap((p) => {
        if (!PLACEHOLDER.test(p.url)) return [p];
        if (!projectId) return [];
        return [{ ...p, url: p.url.replace(PLACEHOLDERS, projectId) }];
      }),
    }));
  }
}
