// Row lookups shared by authentication and the resource routes.
import type { Db } from '../db/database.ts';
import { type ApiError, notFound } from '../common/errors.ts';

export const getDomain = (db: Db, id: string) =>
  db.selectFrom('identity_domains').selectAll().where('id', '=', id).executeTakeFirst();
export const getDomainByName = (db: Db, name: string) =>
  db.selectFrom('identity_domains').selectAll().where('name', '=', name).executeTakeFirst();
export const getProject = (db: Db, id: string) =>
  db.selectFrom('identity_projects').selectAll().where('id', '=', id).executeTakeFirst();
export const getProjectByName = (db: Db, domainId: string, name: string) =>
  db.selectFrom('identity_projects').selectAll().where('domain_id', '=', domainId).where('name', '=', name).executeTakeFirst();
export const getUser = (db: Db, id: string) =>
  db.selectFrom('identity_users').selectAll().where('id', '=', id).executeTakeFirst();
export const getUserByName = (db: Db, domainId: string, name: string) =>
  db.selectFrom('identity_users').selectAll().where('domain_id', '=', domainId).where('name', '=', name).executeTakeFirst();
export const getGroup = (db: Db, id: string) =>
  db.selectFrom('identity_groups').selectAll().where('id', '=', id).executeTakeFirst();
export const getRole = (db: Db, id: string) =>
  db.selectFrom('identity_roles').selectAll().where('id', '=', id).executeTakeFirst();

/** Keystone's 404 message for a missing entity: "Could not find user: <id>." */
export const missing = (kind: string, id: string) => notFound(`Could not find ${kind}: ${id}.`);

/** The row, or `error()`: a 404 in Keystone's words for this kind of entity. */
export async function orNotFound<T>(row: Promise<T | undefined>, error: () => ApiError): Promise<T> {
  const r = await row;
  if (!r) throw error();
  return r;
}

/** The row, or the 404 `missing(kind, id)`. */
export const mustGet = <T>(row: Promise<T | undefined>, kind: string, id: string): Promise<T> => orNotFound(row, () => missing(kind, id));

