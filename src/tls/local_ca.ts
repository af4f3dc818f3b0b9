/**
 * HTTPS on the LAN without manual steps: when no `--tls-cert` is given, the gateway keeps its own
 * small certificate authority in `<data>/tls/` and a server certificate signed by it for the
 * gateway's LAN addresses and host names. A phone trusts the CA once (`GET /ca.crt`, compare the
 * fingerprint shown in the console and the start log); the server certificate can then be
 * re-issued (new IP, close to expiry) without the phones noticing.
 *
 * - The CA: ECDSA P-256, 10 years, `pathLen 0`, name-constrained to private IPv4 networks and
 *   local names (`localhost`, `*.local`, `*.lan`, `*.home.arpa`, `*.internal`, the host name at
 *   creation), so that trusting it cannot make a phone trust any public site.
 * - The server certificate: 825 days (the longest Apple platforms accept), re-issued at start
 *   when a wanted name or address is missing or fewer than 30 days are left.
 *
 * Files (keys mode 0600): `ca.pem`, `ca.key`, `ca.json` (its constraints), `server.pem` (server
 * certificate then CA: the chain served), `server.key`, `server.json` (names, expiry).
 *
 * @module
 */

import { join } from "node:path";
import {
  fingerprint,
  fromPem,
  issueCertificate,
  type Issuer,
  KEY_ALGORITHM,
  keyIdOf,
  pem,
} from "./certificate.ts";

/** What the gateway serves HTTPS with, and what it shows of it. */
export interface TlsMaterial {
  /** PEM chain: server certificate, then the CA. */
  readonly cert: string;
  /** PEM PKCS#8 private key of the server certificate. */
  readonly key: string;
  /** PEM of the CA a phone installs. */
  readonly caPem: string;
  /** SHA-256 fingerprint of the CA certificate (`AB:CD:…`). */
  readonly caFingerprint: string;
  /** SHA-256 fingerprint of the server certificate. */
  readonly serverFingerprint: string;
  /** Names and addresses in the server certificate. */
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  /** Epoch ms at which the server certificate expires. */
  readonly notAfter: number;
  /** What this call created: nothing, a server certificate, or the CA and a server certificate. */
  readonly created: "none" | "server" | "ca";
  /** Wanted names or addresses left out because the CA's constraints do not permit them. */
  readonly excluded: readonly string[];
}

/** Options of {@linkcode loadOrCreateTls}. */
export interface LocalCaOptions {
  /** Where the files live; `undefined`: in memory only (a new CA each start). */
  readonly dir: string | undefined;
  /** Host names wanted in the server certificate. */
  readonly dnsNames: readonly string[];
  /** IPv4 addresses wanted in the server certificate. */
  readonly ips: readonly string[];
  /** Now. @default new Date() */
  readonly now?: Date;
}

const DAY_MS = 86_400_000;
/** Server certificates live this long (Apple's limit for any TLS server certificate). */
export const SERVER_DAYS = 825;
/** A server certificate with fewer days left is re-issued at start. */
export const RENEW_DAYS = 30;
const CA_DAYS = 3650;
const ORG = "intercom-gateway";

/** The DNS suffixes every local CA permits. */
export const PERMITTED_DNS: readonly string[] = [
  "localhost",
  "local",
  "lan",
  "home.arpa",
  "internal",
];
/** The IPv4 networks every local CA permits (private, loopback, link-local, CGNAT). */
export const PERMITTED_NETWORKS: readonly string[] = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "100.64.0.0/10",
];

interface CaMeta {
  readonly dnsNames: string[];
  readonly networks: string[];
}

interface ServerMeta {
  readonly dnsNames: string[];
  readonly ips: string[];
  readonly notAfter: number;
}

function ipNumber(ip: string): number {
  return ip.split(".").reduce((n, p) => n * 256 + Number(p), 0);
}

/** True when `ip` lies in `cidr` (`a.b.c.d/len`). */
export function inNetwork(ip: string, cidr: string): boolean {
  const [base = "", len = "0"] = cidr.split("/");
  const bits = Number(len);
  const size = 2 ** (32 - bits);
  return Math.floor(ipNumber(ip) / size) === Math.floor(ipNumber(base) / size);
}

/** True when the DNS name `name` is within the constraint `base` (RFC 5280: equal or a subdomain). */
export function dnsWithin(name: string, base: string): boolean {
  const n = name.toLowerCase();
  const b = base.toLowerCase();
  return n === b || n.endsWith(`.${b}`);
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function writeFile(path: string, text: string, secret: boolean): Promise<void> {
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, text, { mode: secret ? 0o600 : 0o644 });
  await Deno.rename(tmp, path);
}

async function importPrivate(pemText: string): Promise<CryptoKey | undefined> {
  const der = fromPem(pemText, "PRIVATE KEY");
  if (!der) return undefined;
  try {
    return await crypto.subtle.importKey("pkcs8", der, KEY_ALGORITHM, true, ["sign"]);
  } catch {
    return undefined;
  }
}

async function publicOf(privateKey: CryptoKey): Promise<CryptoKey> {
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", privateKey);
  return await crypto.subtle.importKey("jwk", { kty, crv, x, y }, KEY_ALGORITHM, true, ["verify"]);
}

async function privatePem(key: CryptoKey): Promise<string> {
  return pem("PRIVATE KEY", new Uint8Array(await crypto.subtle.exportKey("pkcs8", key)));
}

interface Ca {
  issuer: Issuer;
  pem: string;
  der: Uint8Array<ArrayBuffer>;
  meta: CaMeta;
}

async function newCa(now: Date, hostNames: readonly string[]): Promise<Ca & { keyPem: string }> {
  const pair = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  const meta: CaMeta = {
    dnsNames: [...new Set([...PERMITTED_DNS, ...hostNames.map((h) => h.toLowerCase())])],
    networks: [...PERMITTED_NETWORKS],
  };
  const commonName = `${ORG} local CA${hostNames[0] ? ` (${hostNames[0]})` : ""}`;
  const der = await issueCertificate({
    kind: "ca",
    commonName,
    organization: ORG,
    publicKey: pair.publicKey,
    selfKey: pair.privateKey,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + CA_DAYS * DAY_MS),
    permitted: { dnsNames: meta.dnsNames, networks: meta.networks },
  });
  return {
    issuer: {
      commonName,
      organization: ORG,
      privateKey: pair.privateKey,
      keyId: await keyIdOf(pair.publicKey),
    },
    pem: pem("CERTIFICATE", der),
    der,
    meta,
    keyPem: await privatePem(pair.privateKey),
  };
}

async function loadCa(dir: string): Promise<Ca | undefined> {
  const [certText, keyText, metaText] = await Promise.all([
    readText(join(dir, "ca.pem")),
    readText(join(dir, "ca.key")),
    readText(join(dir, "ca.json")),
  ]);
  if (!certText || !keyText || !metaText) return undefined;
  const der = fromPem(certText, "CERTIFICATE");
  const privateKey = await importPrivate(keyText);
  if (!der || !privateKey) return undefined;
  let meta: CaMeta;
  try {
    meta = JSON.parse(metaText);
  } catch {
    return undefined;
  }
  if (!Array.isArray(meta.dnsNames) || !Array.isArray(meta.networks)) return undefined;
  return {
    issuer: {
      commonName: commonNameOf(der) ?? `${ORG} local CA`,
      organization: ORG,
      privateKey,
      keyId: await keyIdOf(await publicOf(privateKey)),
    },
    pem: certText,
    der,
    meta,
  };
}

/** The commonName of a certificate we issued (the last UTF8String after the CN OID). */
function commonNameOf(der: Uint8Array): string | undefined {
  // OID 2.5.4.3 = 06 03 55 04 03, then 0c LEN value; the subject's is the second occurrence
  // (issuer first), equal for a self-signed CA.
  for (let i = 0; i + 6 < der.length; i++) {
    if (
      der[i] === 0x06 && der[i + 1] === 0x03 && der[i + 2] === 0x55 && der[i + 3] === 0x04 &&
      der[i + 4] === 0x03 && der[i + 5] === 0x0c
    ) {
      const len = der[i + 6]!;
      return new TextDecoder().decode(der.subarray(i + 7, i + 7 + len));
    }
  }
  return undefined;
}

function covers(meta: ServerMeta, dnsNames: readonly string[], ips: readonly string[]): boolean {
  return dnsNames.every((d) => meta.dnsNames.includes(d)) &&
    ips.every((ip) => meta.ips.includes(ip));
}

/**
 * Reads the CA and server certificate from `dir`, creating or re-issuing what is missing,
 * stale or does not name every wanted address; writes what it created.
 *
 * @throws {Error} when `dir` cannot be created or written.
 */
export async function loadOrCreateTls(options: LocalCaOptions): Promise<TlsMaterial> {
  const now = options.now ?? new Date();
  const dir = options.dir;
  if (dir !== undefined) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  let created: TlsMaterial["created"] = "none";
  let ca = dir !== undefined ? await loadCa(dir) : undefined;
  if (!ca) {
    const fresh = await newCa(now, options.dnsNames.filter((d) => d !== "localhost"));
    ca = fresh;
    created = "ca";
    if (dir !== undefined) {
      await writeFile(join(dir, "ca.key"), fresh.keyPem, true);
      await writeFile(join(dir, "ca.json"), JSON.stringify(fresh.meta), false);
      await writeFile(join(dir, "ca.pem"), fresh.pem, false);
    }
  }
  const meta = ca.meta;
  const excluded: string[] = [];
  const dnsNames = options.dnsNames.filter((d) => {
    const ok = meta.dnsNames.some((b) => dnsWithin(d, b));
    if (!ok) excluded.push(d);
    return ok;
  });
  const ips = options.ips.filter((ip) => {
    const ok = meta.networks.some((n) => inNetwork(ip, n));
    if (!ok) excluded.push(ip);
    return ok;
  });

  let server: { cert: string; key: string; meta: ServerMeta } | undefined;
  if (dir !== undefined && created === "none") {
    const [cert, key, metaText] = await Promise.all([
      readText(join(dir, "server.pem")),
      readText(join(dir, "server.key")),
      readText(join(dir, "server.json")),
    ]);
    let m: ServerMeta | undefined;
    try {
      m = metaText ? JSON.parse(metaText) : undefined;
    } catch {
      m = undefined;
    }
    if (
      cert && key && m && Array.isArray(m.dnsNames) && Array.isArray(m.ips) &&
      typeof m.notAfter === "number" && m.notAfter - now.getTime() > RENEW_DAYS * DAY_MS &&
      covers(m, dnsNames, ips) && cert.includes(ca.pem.trim()) && await importPrivate(key)
    ) {
      server = { cert, key, meta: m };
    }
  }
  if (!server) {
    const pair = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
    const notAfter = now.getTime() + SERVER_DAYS * DAY_MS;
    const der = await issueCertificate({
      kind: "server",
      commonName: dnsNames.find((d) => d !== "localhost") ?? ips[0] ?? "intercom-gateway",
      organization: ORG,
      publicKey: pair.publicKey,
      notBefore: new Date(now.getTime() - DAY_MS),
      notAfter: new Date(notAfter),
      dnsNames,
      ips,
      issuer: ca.issuer,
    });
    server = {
      cert: pem("CERTIFICATE", der) + ca.pem,
      key: await privatePem(pair.privateKey),
      meta: { dnsNames: [...dnsNames], ips: [...ips], notAfter },
    };
    if (created === "none") created = "server";
    if (dir !== undefined) {
      await writeFile(join(dir, "server.key"), server.key, true);
      await writeFile(join(dir, "server.pem"), server.cert, false);
      await writeFile(join(dir, "server.json"), JSON.stringify(server.meta), false);
    }
  }
  const serverDer = fromPem(server.cert, "CERTIFICATE")!;
  return {
    cert: server.cert,
    key: server.key,
    caPem: ca.pem,
    caFingerprint: await fingerprint(ca.der),
    serverFingerprint: await fingerprint(serverDer),
    dnsNames: server.meta.dnsNames,
    ips: server.meta.ips,
    notAfter: server.meta.notAfter,
    created,
    excluded,
  };
}
