/**
 * Why the gateway could not start, in one line an installer can act on: which port, flag or file,
 * and what to do. `app.ts` tags each thing it opens with a {@linkcode StartStep} (through
 * {@linkcode opening}); the serve command turns the failure into a message with
 * {@linkcode describeStartError} (pure: facts about files are gathered by the caller).
 *
 * @module
 */

/** The drop-in that lets the systemd service bind ports below 1024. */
export const LOW_PORT_DROP_IN = "deploy/low-port.conf";

/** What the gateway was opening when it failed. */
export type StartStep =
  | {
    readonly kind: "udp";
    /** The flag that chose the port, without `--` (`door-port`). */
    readonly flag: string;
    readonly port: number;
    /** The group joined on this port, and the local address joined on. */
    readonly multicast?: { readonly group: string; readonly interface: string };
  }
  | {
    readonly kind: "tcp";
    readonly flag: string;
    readonly host: string;
    readonly port: number;
    /** Serving https (so a bad certificate fails here). */
    readonly tls?: boolean;
  }
  | {
    readonly kind: "store";
    /** The `--data` value. */
    readonly location: string;
  }
  | {
    readonly kind: "file";
    readonly flag: string;
    readonly path: string;
  };

/** A start failure tagged with the step that failed; `cause` is the original error. */
export class StartError extends Error {
  /** What was being opened. */
  readonly step: StartStep;

  /** Wraps `cause`, the error of `step`. */
  constructor(step: StartStep, cause: unknown) {
    super(`Cannot start: ${stepLabel(step)}: ${messageOf(cause)}`, { cause });
    this.name = "StartError";
    this.step = step;
  }
}

/**
 * Runs `open` (sync or async); an error it throws comes back as a {@linkcode StartError}
 * tagged with `step`.
 *
 * @example
 * ```ts
 * const step = { kind: "store", location: "./data" } as const;
 * const kv = await opening(step, () => Deno.openKv("./data/gateway.kv"));
 * ```
 */
export async function opening<T>(step: StartStep, open: () => T | Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (e) {
    throw e instanceof StartError ? e : new StartError(step, e);
  }
}

/** Facts about the data store the caller could find (for a store step). */
export interface StoreFacts {
  /** The database file (`<data>/gateway.kv`). */
  readonly file: string;
  /** The directory that holds it. */
  readonly dir: string;
  /** Owner and permission bits of the file, else of the directory, when they could be read. */
  readonly uid?: number | null;
  readonly mode?: number | null;
}

/** What {@linkcode describeStartError} knows besides the error. */
export interface StartContext {
  readonly step: StartStep;
  /** For a store step. */
  readonly store?: StoreFacts;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function nameOf(e: unknown): string {
  return e instanceof Error ? e.name : "";
}

function stepLabel(step: StartStep): string {
  switch (step.kind) {
    case "udp":
      return `UDP ${step.port} (--${step.flag})`;
    case "tcp":
      return `TCP ${step.port} (--${step.flag})`;
    case "store":
      return `data store ${step.location} (--data)`;
    case "file":
      return `${step.path} (--${step.flag})`;
  }
}

/** The OS message without Deno's "(os error N)" and trailing syscall detail. */
function osReason(e: unknown): string {
  return messageOf(e).replace(/ \(os error \d+\).*$/s, "").toLowerCase();
}

function isPermission(e: unknown): boolean {
  return nameOf(e) === "PermissionDenied" || /permission denied|os error 13\b/i.test(messageOf(e));
}

function isDenoPermission(e: unknown): boolean {
  return nameOf(e) === "NotCapable" || /Requires \w+ access/.test(messageOf(e));
}

function describeListen(
  error: unknown,
  step: Extract<StartStep, { kind: "udp" | "tcp" }>,
): string {
  const proto = step.kind.toUpperCase();
  const head = `Cannot listen on ${proto} ${step.port} (--${step.flag})`;
  const name = nameOf(error);
  const message = messageOf(error);
  if (step.kind === "udp" && step.multicast && /^Cannot join multicast group/.test(message)) {
    const { group, interface: on } = step.multicast;
    const cause = (error as Error).cause ?? error;
    const detail = /os error (19|99)\b/.test(messageOf(cause))
      ? `no local interface has the address ${on}; set --multicast-interface (a name such as eth1, or this box's LAN IPv4) or fix --lan-ip`
      : osReason(cause);
    return `Cannot join multicast group ${group} on ${on} (--multicast-interface, else --lan-ip): ${detail}`;
  }
  if (name === "AddrInUse" || /address already in use|os error 98\b/i.test(message)) {
    return `${head}: address in use; is another gateway running? (ss -${
      step.kind === "udp" ? "u" : "t"
    }lnp 'sport = :${step.port}' shows which program has it)`;
  }
  if (isDenoPermission(error)) {
    return `${head}: Deno's --allow-net is not granted (run it with deno task start or the compiled binary)`;
  }
  if (isPermission(error)) {
    if (step.port < 1024) {
      return `${head}: ports below 1024 need privilege; for the systemd service install ${LOW_PORT_DROP_IN} (deploy/install.sh --low-port), or use a port from 1024 up`;
    }
    return `${head}: permission denied by the system (a security policy?)`;
  }
  if (
    step.kind === "tcp" &&
    (name === "AddrNotAvailable" || /cannot assign requested address|os error 99\b/i.test(message))
  ) {
    return `Cannot listen on TCP ${step.host}:${step.port} (--http-host): no local interface has the address ${step.host}`;
  }
  if (step.kind === "tcp" && step.tls && name === "InvalidData") {
    return `Cannot serve https (--tls-cert, --tls-key): ${message}`;
  }
  return `${head}: ${message}`;
}

function describeStore(
  error: unknown,
  step: Extract<StartStep, { kind: "store" }>,
  facts: StoreFacts | undefined,
): string {
  const file = facts?.file ?? step.location;
  const head = `Cannot open the data store ${file} (--data ${step.location})`;
  const message = messageOf((error as Error).cause ?? error);
  if (isDenoPermission(error)) {
    return `${head}: Deno's --allow-read/--allow-write do not cover it (run it with deno task start or the compiled binary)`;
  }
  if (/read-only file system|os error 30\b/i.test(message)) {
    return `${head}: it is on a read-only file system; give --data a directory on a writable disk (the systemd service: /var/lib/intercom-gateway), or remount that disk read-write`;
  }
  if (
    isPermission(error) || isPermission((error as Error).cause) ||
    /readonly database|read-only database|unable to open database file/i.test(message)
  ) {
    const owner = facts?.uid !== undefined && facts.uid !== null ? `owner uid ${facts.uid}` : "";
    const mode = facts?.mode !== undefined && facts.mode !== null
      ? `mode ${(facts.mode & 0o777).toString(8).padStart(3, "0")}`
      : "";
    const seen = [owner, mode].filter(Boolean).join(", ");
    const dir = facts?.dir ?? step.location;
    return `${head}: the user the gateway runs as cannot write it${
      seen ? ` (${seen})` : ""
    }; run the gateway as that owner, or give ${dir} to the gateway's user: sudo chown -R intercom:intercom ${dir} && sudo chmod -R u+rwX ${dir} (intercom: the systemd service's user)`;
  }
  if (/locked|busy/i.test(message)) {
    return `${head}: it is locked; is another gateway using the same --data?`;
  }
  if (/no space/i.test(message)) return `${head}: the disk is full`;
  return `${head}: ${message}`;
}

function describeFile(error: unknown, step: Extract<StartStep, { kind: "file" }>): string {
  const head = `Cannot read ${step.path} (--${step.flag})`;
  if (nameOf(error) === "NotFound") return `${head}: no such file`;
  if (isDenoPermission(error)) {
    return `${head}: Deno's --allow-read does not cover it (run it with deno task start or the compiled binary)`;
  }
  if (isPermission(error)) {
    return `${head}: permission denied; make it readable by the user the gateway runs as (for the systemd service: root:intercom, mode 0640)`;
  }
  if (nameOf(error) === "IsADirectory" || /is a directory/i.test(messageOf(error))) {
    return `${head}: it is a directory, not a PEM file`;
  }
  return `${head}: ${messageOf(error)}`;
}

/**
 * One line that names what failed (port and flag, or file) and what to do about it.
 *
 * @example
 * ```ts
 * describeStartError(new Deno.errors.AddrInUse("Address already in use (os error 98)"), {
 *   step: { kind: "udp", flag: "door-port", port: 8302 },
 * });
 * // "Cannot listen on UDP 8302 (--door-port): address in use; is another gateway running? …"
 * ```
 */
export function describeStartError(error: unknown, context: StartContext): string {
  const { step } = context;
  switch (step.kind) {
    case "udp":
    case "tcp":
      return describeListen(error, step);
    case "store":
      return describeStore(error, step, context.store);
    case "file":
      return describeFile(error, step);
  }
}
