// The service catalog, kept in memory: tokens carry it and validation must not
// read the database. Catalog writes call invalidate(); other replicas reload on
// their sync tick.
import type { Db } from '../db/database.ts';

export interface CatalogEndpoint { id: string; interface: string; region: string | null; region_id: string | null; url: string }
export interface CatalogEntry { id: string; type: string; name: string; endpoints: CatalogEndpoint[] }

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
}
