/**
 * Console accounts (building managers, installers) and the audit of what they do.
 *
 * A password is stored only as a slow salted hash: PBKDF2-HMAC-SHA-256 from WebCrypto with
 * {@linkcode PBKDF2_ITERATIONS} iterations (≈ 75 ms on the 2-core x86_64 build machine, measured;
 * the iteration count is stored with each hash, so it can be raised later without a migration).
 * A password the gateway generates is shown once and must be changed at the first login
 * (`mustChange`).
 *
 * KV layout (new prefixes; no migration needed):
 * - `["admin", name]` → the account and its password hash
 * - `["admin_audit", atMs, id]` → {@linkcode AdminAuditEntry}: every console action and every
 *   login attempt, newest {@linkcode MAX_AUDIT_ENTRIES} kept
 *
 * @module
 */

/** PBKDF2 iterations for new hashes (OWASP 2023 for PBKDF2-HMAC-SHA-256). */
export const PBKDF2_ITERATIONS = 600_000;
/** Audit entries kept (older ones are pruned every {@linkcode AUDIT_PRUNE_EVERY} writes). */
export const MAX_AUDIT_ENTRIES = 10_000;
/** Writes between two audit prunes. */
export const AUDIT_PRUNE_EVERY = 100;
/** Shortest password accepted. */
export const MIN_PASSWORD_LENGTH = 10;
/** Longest password accepted (PBKDF2 takes any length; a bound keeps requests small). */
export const MAX_PASSWORD_LENGTH = 256;

const ADMIN = "admin";
const AUDIT = "admin_audit";
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
/** Letters and digits that cannot be misread (no 0/O, 1/l/I). */
const ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";

/** A stored password hash. */
export interface PasswordHash {
  readonly alg: "pbkdf2-sha256";
  readonly iterations: number;
  /** Base64, 16 bytes. */
  readonly salt: string;
  /** Base64, 32 bytes. */
  readonly hash: string;
}

/** A console account as shown (no hash in it). */
export interface AdminAccount {
  readonly name: string;
  /** ISO 8601. */
  readonly createdAt: string;
  /** ISO 8601; sessions opened before it end (a reset or a changed password). */
  readonly passwordSetAt: string;
  /** The password was generated: it must be changed at the next login. */
  readonly mustChange: boolean;
}

interface StoredAdmin extends AdminAccount {
  readonly password: PasswordHash;
}

/** One audited action. */
export interface AdminAuditEntry {
  readonly id: string;
  /** ISO 8601. */
  readonly at: string;
  /** The account (for a failed login: the name tried), or `cli` for the command line. */
  readonly admin: string;
  /** What, e.g. `login`, `login_failed`, `binding_add`, `door_forget`, `call_hangup`. */
  readonly action: string;
  /** What it was done to, e.g. `uid-a@00010108090`, `M00010100`, a call id. */
  readonly target?: string;
  /** From where: the client's IP (`local` for the command line). */
  readonly ip: string;
  /** Details, e.g. why a login failed. */
  readonly detail?: string;
}

/** What {@linkcode AdminStore.audit} takes. */
export type AdminAuditInput = Omit<AdminAuditEntry, "id" | "at">;

/** A page of the audit, newest first. */
export interface AuditPage {
  readonly entries: AdminAuditEntry[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  readonly next?: string;
}

/** Why `name` is not an account name, or `undefined` when it is. */
export function adminNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || !NAME.test(name)) {
    return "a name is 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit";
  }
  return undefined;
}

/** Why `password` is not acceptable, or `undefined` when it is. */
export function passwordProblem(password: unknown): string | undefined {
  if (typeof password !== "string") return "the password must be a string";
  const n = [...password].length;
  if (n < MIN_PASSWORD_LENGTH) {
    return `the password is shorter than ${MIN_PASSWORD_LENGTH} characters`;
  }
  if (n > MAX_PASSWORD_LENGTH) {
    return `the password is longer than ${MAX_PASSWORD_LENGTH} characters`;
  }
  return undefined;
}

/** A new random password: 4 groups of 5 unambiguous characters (≈ 99 bits), e.g. `k7mqa-…`. */
export function newPassword(): string {
  const out: string[] = [];
  const bytes = crypto.getRandomValues(new Uint8Array(40));
  for (const b of bytes) {
    if (out.length === 20) break;
    if (b >= 248) continue; // 248 = 8 × 31: no modulo bias
    out.push(ALPHABET[b % ALPHABET.length]!);
  }
  while (out.length < 20) {
    const b = crypto.getRandomValues(new Uint8Array(1))[0]!;
    if (b < 248) out.push(ALPHABET[b % ALPHABET.length]!);
  }
  return [0, 5, 10, 15].map((i) => out.slice(i, i + 5).join("")).join("-");
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

async function derive(password: string, salt: Uint8Array<ArrayBuffer>, iterations: number) {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password.normalize("NFC")),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  return new Uint8Array(
    await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256),
  );
}

/** Hashes a password with a new random salt. */
export async function hashPassword(
  password: string,
  iterations: number = PBKDF2_ITERATIONS,
): Promise<PasswordHash> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return {
    alg: "pbkdf2-sha256",
    iterations,
    salt: b64(salt),
    hash: b64(await derive(password, salt, iterations)),
  };
}

/** True when `password` matches `stored`; compares without an early exit. */
export async function passwordMatches(password: string, stored: PasswordHash): Promise<boolean> {
  if (stored.alg !== "pbkdf2-sha256" || typeof password !== "string") return false;
  const want = unb64(stored.hash);
  const got = await derive(password, unb64(stored.salt), stored.iterations);
  let diff = want.length ^ got.length;
  for (let i = 0; i < got.length; i++) diff |= got[i]! ^ (want[i] ?? 0);
  return diff === 0;
}

function publicAccount(s: StoredAdmin): AdminAccount {
  return {
    name: s.name,
    createdAt: s.createdAt,
    passwordSetAt: s.passwordSetAt,
    mustChange: s.mustChange,
  };
}

let auditSeq = 0;

/** Options of {@linkcode AdminStore}. */
export interface AdminStoreOptions {
  /** Wall clock. @default () => new Date() */
  now?: () => Date;
  /** PBKDF2 iterations of new hashes (tests lower it). @default {PBKDF2_ITERATIONS} */
  iterations?: number;
  /** Audit entries kept. @default {MAX_AUDIT_ENTRIES} */
  maxAudit?: number;
}

/** Console accounts and their audit over a Deno KV store (which the caller opens and closes). */
export class AdminStore {
  readonly #kv: Deno.Kv;
  readonly #now: () => Date;
  readonly #iterations: number;
  readonly #maxAudit: number;
  #writes = 0;
  #dummy: Promise<PasswordHash> | undefined;

  /** Uses `kv`. */
  constructor(kv: Deno.Kv, options: AdminStoreOptions = {}) {
    this.#kv = kv;
    this.#now = options.now ?? (() => new Date());
    this.#iterations = options.iterations ?? PBKDF2_ITERATIONS;
    this.#maxAudit = options.maxAudit ?? MAX_AUDIT_ENTRIES;
  }

  #check(name: string): void {
    const problem = adminNameProblem(name);
    if (problem) throw new TypeError(`Cannot use admin name ${JSON.stringify(name)}: ${problem}`);
  }

  /**
   * Creates an account. Without `password`, one is generated, returned once and must be changed
   * at the first login.
   *
   * @throws {TypeError} for a bad name or password, or a name that exists.
   */
  async add(
    name: string,
    password?: string,
  ): Promise<{ account: AdminAccount; password: string; generated: boolean }> {
    this.#check(name);
    const generated = password === undefined;
    const pw = password ?? newPassword();
    const problem = passwordProblem(pw);
    if (problem) throw new TypeError(`Cannot add admin ${name}: ${problem}`);
    const at = this.#now().toISOString();
    const stored: StoredAdmin = {
      name,
      createdAt: at,
      passwordSetAt: at,
      mustChange: generated,
      password: await hashPassword(pw, this.#iterations),
    };
    const key = [ADMIN, name];
    const result = await this.#kv.atomic().check({ key, versionstamp: null }).set(key, stored)
      .commit();
    if (!result.ok) throw new TypeError(`Cannot add admin ${name}: the name exists`);
    return { account: publicAccount(stored), password: pw, generated };
  }

  /** Every account, by name. */
  async list(): Promise<AdminAccount[]> {
    const out: AdminAccount[] = [];
    for await (const e of this.#kv.list<StoredAdmin>({ prefix: [ADMIN] })) {
      out.push(publicAccount(e.value));
    }
    return out;
  }

  /** One account. */
  async get(name: string): Promise<AdminAccount | undefined> {
    if (adminNameProblem(name)) return undefined;
    const e = await this.#kv.get<StoredAdmin>([ADMIN, name]);
    return e.value ? publicAccount(e.value) : undefined;
  }

  /** Deletes an account (its sessions end at their next request); false when unknown. */
  async remove(name: string): Promise<boolean> {
    if (adminNameProblem(name)) return false;
    const key = [ADMIN, name];
    const e = await this.#kv.get(key);
    if (e.value === null) return false;
    await this.#kv.delete(key);
    return true;
  }

  /**
   * Sets a new password (generated when absent: shown once, to be changed at the next login);
   * the account's sessions end.
   *
   * @throws {TypeError} for a bad password or an unknown account.
   */
  async setPassword(
    name: string,
    password?: string,
  ): Promise<{ account: AdminAccount; password: string; generated: boolean }> {
    this.#check(name);
    const generated = password === undefined;
    const pw = password ?? newPassword();
    const problem = passwordProblem(pw);
    if (problem) throw new TypeError(`Cannot set the password of ${name}: ${problem}`);
    const hash = await hashPassword(pw, this.#iterations);
    const key = [ADMIN, name];
    for (let attempt = 0; attempt < 20; attempt++) {
      const e = await this.#kv.get<StoredAdmin>(key);
      if (e.value === null) {
        throw new TypeError(`Cannot set the password of ${name}: no such admin`);
      }
      const stored: StoredAdmin = {
        ...e.value,
        passwordSetAt: this.#now().toISOString(),
        mustChange: generated,
        password: hash,
      };
      if ((await this.#kv.atomic().check(e).set(key, stored).commit()).ok) {
        return { account: publicAccount(stored), password: pw, generated };
      }
    }
    throw new Error(`Cannot set the password of ${name}: store busy, try again`);
  }

  /**
   * The account when `password` is its password, else `undefined`. An unknown name costs a hash
   * as well, so the answer time does not tell which names exist.
   */
  async verify(name: string, password: string): Promise<AdminAccount | undefined> {
    const stored = adminNameProblem(name)
      ? null
      : (await this.#kv.get<StoredAdmin>([ADMIN, name])).value;
    this.#dummy ??= hashPassword("no such account", this.#iterations);
    const hash = stored?.password ?? await this.#dummy;
    const ok = await passwordMatches(typeof password === "string" ? password : "", hash);
    return ok && stored ? publicAccount(stored) : undefined;
  }

  /** Records an action; keeps the newest {@linkcode MAX_AUDIT_ENTRIES}. */
  async audit(input: AdminAuditInput): Promise<AdminAuditEntry> {
    const now = this.#now();
    const seq = (auditSeq++ % 0x1_0000_0000).toString(16).padStart(8, "0");
    const entry: AdminAuditEntry = {
      id: seq + crypto.getRandomValues(new Uint8Array(4)).toHex(),
      at: now.toISOString(),
      admin: String(input.admin).slice(0, 64),
      action: String(input.action).slice(0, 64),
      ...(input.target !== undefined ? { target: String(input.target).slice(0, 200) } : {}),
      ip: String(input.ip).slice(0, 64),
      ...(input.detail !== undefined ? { detail: String(input.detail).slice(0, 300) } : {}),
    };
    await this.#kv.set([AUDIT, now.getTime(), entry.id], entry);
    if (++this.#writes % AUDIT_PRUNE_EVERY === 0) await this.pruneAudit();
    return entry;
  }

  /** The audit, newest first, `limit` (1–500) at a time from before the cursor `before`. */
  async auditPage(options: { limit?: number; before?: string } = {}): Promise<AuditPage> {
    const limit = Math.min(500, Math.max(1, Math.floor(options.limit ?? 50)));
    let end: Deno.KvKey | undefined;
    if (options.before) {
      const [ms, id] = options.before.split("-");
      if (ms !== undefined && id !== undefined && /^\d+$/.test(ms)) end = [AUDIT, Number(ms), id];
    }
    const entries: AdminAuditEntry[] = [];
    let last: Deno.KvKey | undefined;
    const selector = end ? { prefix: [AUDIT], end } : { prefix: [AUDIT] };
    for await (
      const e of this.#kv.list<AdminAuditEntry>(selector, { reverse: true, limit: limit + 1 })
    ) {
      if (entries.length === limit) {
        return { entries, next: `${String(last![1])}-${String(last![2])}` };
      }
      entries.push(e.value);
      last = e.key;
    }
    return { entries };
  }

  /** Deletes all but the newest `maxAudit` entries; resolves to how many were deleted. */
  async pruneAudit(): Promise<number> {
    let seen = 0;
    let batch: Deno.KvKey[] = [];
    let deleted = 0;
    for await (const e of this.#kv.list({ prefix: [AUDIT] }, { reverse: true })) {
      if (++seen <= this.#maxAudit) continue;
      batch.push(e.key);
      if (batch.length === 100) {
        const op = this.#kv.atomic();
        for (const k of batch) op.delete(k);
        await op.commit();
        deleted += batch.length;
        batch = [];
      }
    }
    if (batch.length) {
      const op = this.#kv.atomic();
      for (const k of batch) op.delete(k);
      await op.commit();
      deleted += batch.length;
    }
    return deleted;
  }
}
