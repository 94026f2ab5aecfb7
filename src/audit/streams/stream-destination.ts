import ipaddr from 'ipaddr.js';
import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { textSecrets } from '../../resources/secrets';
import { SECRET_KEY } from '../capture/audited-resources';

/** Resolves a host name to every address it has (DNS, /etc/hosts), as the connection would. */
export type StreamResolver = (host: string) => Promise<{ address: string; family: number }[]>;

/** The resolver's provider token: the system's by default, a fake in tests that need names resolved. */
export const STREAM_RESOLVER = Symbol('STREAM_RESOLVER');

export const systemResolver: StreamResolver = (host) => lookup(host, { all: true, verbatim: true });

export const MAX_URL_LENGTH = 2048;

/** Why a stream's URL or address is refused; the message says what is accepted. */
export class StreamDestinationError extends Error {
  override name = 'StreamDestinationError';
}

const PRIVATE_HINT =
  'a stream must reach a public address (set AUDIT_STREAMS_ALLOW_PRIVATE=true on the service to allow private, loopback and link-local ones)';

/**
 * The URL as the stream keeps it, or why it is refused. The WHATWG parser normalises every IPv4
 * spelling (`2130706433`, `0x7f.1`, `127.1`) to dotted decimal and IPv6 to its short form, so the
 * address checks below see one spelling.
 */
export function parseStreamUrl(raw: string, allowPrivate: boolean): URL {
  if (raw.length > MAX_URL_LENGTH) throw new StreamDestinationError(`url must be at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new StreamDestinationError('url must be an absolute http(s):// URL, e.g. https://logs.example.com/audit');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new StreamDestinationError('url must be an absolute http(s):// URL, e.g. https://logs.example.com/audit');
  }
  if (url.protocol === 'http:' && !allowPrivate) {
    throw new StreamDestinationError(
      'url must be https:// (plain http:// is accepted only when the service runs with AUDIT_STREAMS_ALLOW_PRIVATE=true)',
    );
  }
  if (url.username || url.password) {
    throw new StreamDestinationError(
      'url must not hold credentials (user:password@): the URL is shown to admins; the receiver authenticates a batch by its X-Audit-Signature',
    );
  }
  const credential = [...url.searchParams.keys()].find((name) => SECRET_KEY.test(name));
  if (credential !== undefined) {
    throw new StreamDestinationError(
      `url must not hold a credential in its query (${credential}=…): the URL is shown to admins and recorded in the audit log, which is exported and streamed; the receiver authenticates a batch by its X-Audit-Signature`,
    );
  }
  return url;
}

/**
 * Refuses a new stream's URL that holds a secret by the log's text rule anywhere else (a parameter of
 * its path or fragment: `;jsessionid=…`, `#access_token=…`), which the log would record in clear. A
 * stream added before the rule keeps delivering: only `parseStreamUrl` runs before each delivery.
 */
export function refuseTextSecrets(url: URL): void {
  const [secret] = textSecrets(url.href);
  if (secret !== undefined) {
    throw new StreamDestinationError(
      `url must not hold a credential (${secret.name === null ? 'a password' : `${secret.name}=…`}): the URL is shown to admins and recorded in the audit log, which is exported and streamed; the receiver authenticates a batch by its X-Audit-Signature`,
    );
  }
}

/** The host of a parsed URL without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');

/**
 * Why an address is not public, or undefined when it is. Only ipaddr.js's `unicast` range passes:
 * private, loopback, link-local, unique-local, unspecified, carrier-grade NAT, multicast, reserved,
 * IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) and IPv6 outside
 * global unicast are all refused.
 */
export function notPublic(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  const parsed = ipaddr.parse(address);
  const range = parsed.range();
  if (range !== 'unicast') return range;
  // IPv6 outside global unicast (2000::/3), e.g. the IPv4-compatible ::/96 (`[::127.0.0.1]`), is
  // unassigned or carries another address: ipaddr.js calls it unicast, it is not a public one.
  if (parsed instanceof ipaddr.IPv6 && !parsed.match(GLOBAL_UNICAST)) return 'not global unicast (outside 2000::/3)';
  return undefined;
}

/**
 * Resolves the URL's host and checks every address it has; returns them, or throws naming the first
 * that is not public. Run when a stream is created and again before every connection (a name can
 * be rebound to an internal address after it was checked), and the connection then goes to an
 * address checked here, never to a second lookup's answer.
 */
export async function resolvePublic(
  url: URL,
  resolver: StreamResolver,
  allowPrivate: boolean,
): Promise<LookupAddress[]> {
  const host = hostOf(url);
  let addresses: LookupAddress[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = (await resolver(host)).map(({ address, family }) => ({ address, family }));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new StreamDestinationError(`url's host ${host} cannot be resolved (${code})`);
    }
    if (addresses.length === 0) throw new StreamDestinationError(`url's host ${host} cannot be resolved`);
  }
  if (allowPrivate) return addresses;
  for (const { address } of addresses) {
    const range = notPublic(address);
    if (range) {
      const what = address === host ? `${host} is` : `${host} resolves to ${address},`;
      throw new StreamDestinationError(`${what} not a public address (${range}): ${PRIVATE_HINT}`);
    }
  }
  return addresses;
}
