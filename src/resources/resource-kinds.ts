import type { ResourceType } from '../audit/capture/audited-resources';

/** The Prisma client properties of the four resource models. */
export type ResourceDelegate = 'source' | 'sqlModel' | 'segment' | 'destination';

/** A field that names another resource of the same workspace: a single id or a list of ids. */
export interface ResourceReference {
  field: string;
  delegate: ResourceDelegate;
  label: string;
  list?: boolean;
}

/** Resources of another type that use this one, which therefore cannot be deleted while they exist. */
export interface ResourceDependents {
  delegate: ResourceDelegate;
  label: string;
  where: (ids: string[]) => object;
}

/** What differs between the four resource types; everything else is shared by ResourcesService. */
export interface ResourceKind {
  type: ResourceType;
  label: string;
  delegate: ResourceDelegate;
  /** The fields a client sends and reads besides name and the bookkeeping ones. */
  fields: readonly string[];
  secretFields: readonly string[];
  references: readonly ResourceReference[];
  dependents?: ResourceDependents;
}

export const SOURCE: ResourceKind = {
  type: 'source',
  label: 'Source',
  delegate: 'source',
  fields: ['type', 'config'],
  secretFields: ['config'],
  references: [],
  dependents: { delegate: 'sqlModel', label: 'models', where: (ids) => ({ sourceId: { in: ids } }) },
};

export const MODEL: ResourceKind = {
  type: 'model',
  label: 'Model',
  delegate: 'sqlModel',
  fields: ['sourceId', 'sql'],
  secretFields: [],
  references: [{ field: 'sourceId', delegate: 'source', label: 'source' }],
  dependents: { delegate: 'segment', label: 'segments', where: (ids) => ({ modelId: { in: ids } }) },
};

export const SEGMENT: ResourceKind = {
  type: 'segment',
  label: 'Segment',
  delegate: 'segment',
  fields: ['modelId', 'definition'],
  secretFields: [],
  references: [{ field: 'modelId', delegate: 'sqlModel', label: 'model' }],
  dependents: { delegate: 'destination', label: 'destinations', where: (ids) => ({ segmentIds: { hasSome: ids } }) },
};

export const DESTINATION: ResourceKind = {
  type: 'destination',
  label: 'Destination',
  delegate: 'destination',
  fields: ['type', 'config', 'enabled', 'segmentIds'],
  secretFields: ['config'],
  references: [{ field: 'segmentIds', delegate: 'segment', label: 'segment', list: true }],
};
