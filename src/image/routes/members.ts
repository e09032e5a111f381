// /v2/images/{id}/members: sharing an image (visibility 'shared') with other
// projects. The owner adds and removes members; a member accepts or rejects
// (member_status), and sees the image in its default list once accepted.
import { ApiError, badRequest, conflict, forbidden, notFound } from '../../common/errors.ts';
import { route, type Route, type RouteContext } from '../../http/service.ts';
import type { ImageContext } from '../context.ts';
import { imageTargetLoader, objectBody, renderMember, targetImage } from '../http.ts';
import { isAdminCred, QUOTAS, type ImageMember, type ImageRecord } from '../images.ts';
import { MEMBER_STATUSES } from '../schemas.ts';

function requireShared(img: ImageRecord, message: string): void {
  if (img.visibility !== 'shared') throw forbidden(message);
}

function findMember(img: ImageRecord, memberId: string): ImageMember {
  const m = img.members.find((x) => x.member_id === memberId);
  if (!m) throw notFound(`${memberId} not found in the member list of the image ${img.id}.`);
  return m;
}

/**
 * The one attribute a member request body carries ({"member": ...} or
 * {"status": ...}), with Glance's 400s for no body, a body that is not an
 * object, and a body without it.
 */
function bodyAttribute(rc: RouteContext, key: string, notObject: string, missing: string): unknown {
  const body = objectBody(rc.body, notObject);
  if (!(key in body)) throw badRequest(missing);
  return body[key];
}

/** A project sees every member of its own image, a member only its own membership. */
function visibleMembers(rc: RouteContext, img: ImageRecord): ImageMember[] {
  const cred = rc.cred!;
  if (isAdminCred(cred) || (cred.projectId !== null && cred.projectId === img.owner)) return img.members;
  return img.members.filter((m) => m.member_id === cred.projectId);
}

export function membersRoutes(ictx: ImageContext): Route[] {
  const target = imageTargetLoader(ictx, (rc) => (rc.params.member_id !== undefined ? { member_id: rc.params.member_id } : {}));
  return [
    route({
      method: 'POST', path: '/v2/images/:image_id/members', rule: 'add_member', target,
      async handler(rc) {
        const memberId = bodyAttribute(rc, 'member', 'Expected a member in the form: {"member": "image_id"}', 'Member to be added not specified');
        if (!memberId) throw badRequest("Member can't be empty");
        if (typeof memberId !== 'string' || memberId.length > 255) throw badRequest('Member must be a project id (a string of at most 255 characters).');
        const img = targetImage(rc);
        requireShared(img, `Not allowed to create members for image ${img.id}.`);
        if (img.members.some((m) => m.member_id === memberId)) throw conflict(`Member ${memberId} is duplicated for image ${img.id}`);
        if (img.members.length + 1 > QUOTAS.members) {
          throw new ApiError('PayloadTooLarge', `Image member limit exceeded for image ${img.id}: The limit has been exceeded on the number of allowed image members for this image. Attempted: ${img.members.length + 1}, Maximum: ${QUOTAS.members}:`);
        }
        const now = new Date().toISOString();
        const m: ImageMember = { image_id: img.id, member_id: memberId, status: 'pending', created_at: now, updated_at: now };
        try {
          await ictx.db.insertInto('image_members').values(m).execute();
        } catch (e) {
          const exists = await ictx.db.selectFrom('image_members').select('member_id').where('image_id', '=', img.id).where('member_id', '=', memberId).executeTakeFirst();
          if (exists) throw conflict(`Member ${memberId} is duplicated for image ${img.id}`);
          throw e;
        }
        return renderMember(m);
      },
    }),
    route({
      method: 'GET', path: '/v2/images/:image_id/members', rule: 'get_members', target,
      handler(rc) {
        const img = targetImage(rc);
        requireShared(img, `Not allowed to list members for image ${img.id}: Only shared images have members.`);
        return { members: visibleMembers(rc, img).map(renderMember), schema: '/v2/schemas/members' };
      },
    }),
    route({
      method: 'GET', path: '/v2/images/:image_id/members/:member_id', rule: 'get_member', target,
      handler(rc) {
        const img = targetImage(rc);
        // Glance answers 404 rather than 403 here, not to tell what exists.
        if (img.visibility !== 'shared') throw notFound('Only shared images have members.');
        const m = findMember(img, rc.params.member_id!);
        if (!visibleMembers(rc, img).includes(m)) throw notFound(`${m.member_id} not found in the member list of the image ${img.id}.`);
        return renderMember(m);
      },
    }),
    route({
      method: 'PUT', path: '/v2/images/:image_id/members/:member_id', rule: 'modify_member', target,
      async handler(rc) {
        const status = bodyAttribute(rc, 'status', 'Expected a status in the form: {"status": "status"}', 'Status not specified');
        const img = targetImage(rc);
        requireShared(img, `Not allowed to update members for image ${img.id}.`);
        const m = findMember(img, rc.params.member_id!);
        if (typeof status !== 'string' || !(MEMBER_STATUSES as readonly string[]).includes(status)) {
          throw badRequest(`Incorrect request: Status must be one of ${MEMBER_STATUSES.map((s) => `'${s}'`).join(', ')}`);
        }
        const now = new Date().toISOString();
        await ictx.db.updateTable('image_members').set({ status, updated_at: now })
          .where('image_id', '=', img.id).where('member_id', '=', m.member_id).execute();
        return renderMember({ ...m, status, updated_at: now });
      },
    }),
    route({
      method: 'DELETE', path: '/v2/images/:image_id/members/:member_id', rule: 'delete_member', target, status: 204,
      async handler(rc) {
        const img = targetImage(rc);
        requireShared(img, `Not allowed to delete members for image ${img.id}.`);
        const m = findMember(img, rc.params.member_id!);
        await ictx.db.deleteFrom('image_members').where('image_id', '=', img.id).where('member_id', '=', m.member_id).execute();
      },
    }),
  ];
}
