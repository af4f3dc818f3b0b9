/**
 * The store commands' way into the community (`bind add|remove|import` with `--cluster` or
 * `INTERCOM_CLUSTER`): a short-lived link to this box's leaf node whose hub takes the change.
 *
 * @module
 */

import { systemClock } from "../clock.ts";
import { nullLogger } from "../log.ts";
import type { SharedBindings } from "../store/bindings.ts";
import { HubBindings } from "./hub_bindings.ts";
import { type CommunityRecord, communityRecords } from "./records.ts";
import { ClusterLink } from "./link.ts";

/** How long a command waits for the hub's first answer before saying it is unreachable. */
export const CLI_HUB_WAIT_MS = 3000;

/**
 * The community's latest records (`calls --cluster`), newest first.
 *
 * @throws when the hub is unreachable.
 */
export async function fetchCommunityRecords(
  url: string,
  kind: "call" | "unlock",
  limit: number,
): Promise<CommunityRecord[]> {
  return await withCliLink(url, async (link) => {
    if (!link.hubUp) throw new Error("no answer from the hub through the leaf node");
    return await communityRecords(link, kind, limit);
  });
}

/** Runs `fn` with the hub's bindings through the leaf node at `url`, then closes the link. */
export async function withSharedBindings<T>(
  url: string,
  fn: (shared: SharedBindings) => Promise<T>,
): Promise<T> {
  return await withCliLink(url, (link) => fn(new HubBindings(link)));
}

/**
 * Runs `fn` with a fresh link (a one-off gateway id) to the leaf node at `url`, started with
 * {@linkcode CLI_HUB_WAIT_MS} to wait for the hub, then closes the link whatever `fn` does.
 */
async function withCliLink<T>(url: string, fn: (link: ClusterLink) => Promise<T>): Promise<T> {
  const link = new ClusterLink({
    url,
    gatewayId: `cli-${crypto.randomUUID().slice(0, 8)}`,
    clock: systemClock,
    logger: nullLogger,
  });
  try {
    await link.start(CLI_HUB_WAIT_MS);
    return await fn(link);
  } finally {
    await link.close();
  }
}
