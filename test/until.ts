/**
 * Polls `probe` every `everyMs` until it gives a value other than undefined, and returns it; throws
 * naming `what` when `ms` pass first. For what the service does after it answers (a record written
 * once a download has ended, a delivery, a log line).
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 60_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
