/**
 * An export's file name: the workspace and the range, `acme-audit-log-2026-11-01-to-2026-11-26.csv`.
 * The days are UTC days with the end day included (`to` is exclusive, so its last day is the day of
 * the instant before it); a missing bound reads `from-…`, `until-…` or `all-time`. The page names its
 * downloads the same way, in the user's own days and words ("last-7-days").
 */
export function exportFilename(
  workspaceName: string,
  from: string | undefined,
  to: string | undefined,
  format: string,
) {
  const day = (instant: number) => new Date(instant).toISOString().slice(0, 10);
  const first = from ? day(Date.parse(from)) : '';
  const last = to ? day(Date.parse(to) - 1) : '';
  const range = first && last ? `${first}-to-${last}` : first ? `from-${first}` : last ? `until-${last}` : 'all-time';
  return `${slug(workspaceName)}-audit-log-${range}.${format}`;
}

/** Letters and digits of the name, accents dropped, in lower case, joined by hyphens (safe in any file system). */
export function slug(name: string): string {
  const ascii = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
  return ascii || 'workspace';
}
