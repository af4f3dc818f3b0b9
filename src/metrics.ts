/**
 * Counters: cheap to bump on hot paths (`counter.value++`), rendered in Prometheus text format.
 *
 * @module
 */

/** A monotonically increasing number. */
export interface Counter {
  value: number;
}

/** Named counters with optional labels. */
export class Metrics {
  #counters = new Map<string, { name: string; labels: Record<string, string>; c: Counter }>();
  #help = new Map<string, string>();
  #gauges = new Map<string, () => number>();
  #collectors: (() => string)[] = [];

  /** The counter `name{labels}`, created at 0 on first use. Keep the returned object on hot paths. */
  counter(name: string, labels: Record<string, string> = {}, help?: string): Counter {
    const key = name + JSON.stringify(labels);
    let entry = this.#counters.get(key);
    if (!entry) {
      entry = { name, labels, c: { value: 0 } };
      this.#counters.set(key, entry);
    }
    if (help) this.#help.set(name, help);
    return entry.c;
  }

  /** Increments `name{labels}` by `n`. */
  inc(name: string, labels: Record<string, string> = {}, n = 1): void {
    this.counter(name, labels).value += n;
  }

  /** The current value of `name{labels}` (0 when never bumped). */
  get(name: string, labels: Record<string, string> = {}): number {
    return this.#counters.get(name + JSON.stringify(labels))?.c.value ?? 0;
  }

  /** Registers a gauge read at render time. */
  gauge(name: string, read: () => number, help?: string): void {
    this.#gauges.set(name, read);
    if (help) this.#help.set(name, help);
  }

  /** Adds text rendered by `render` (complete `# TYPE` blocks) to every exposition. */
  collector(render: () => string): void {
    this.#collectors.push(render);
  }

  /** Prometheus text exposition format. */
  render(): string {
    const lines: string[] = [];
    const byName = new Map<string, string[]>();
    for (const { name, labels, c } of this.#counters.values()) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, "_")}"`).join(
        ",",
      );
      if (!byName.has(name)) byName.set(name, []);
      byName.get(name)!.push(`${name}${l ? `{${l}}` : ""} ${c.value}`);
    }
    for (const [name, samples] of [...byName].sort(([a], [b]) => a.localeCompare(b))) {
      if (this.#help.has(name)) lines.push(`# HELP ${name} ${this.#help.get(name)}`);
      lines.push(`# TYPE ${name} counter`, ...samples);
    }
    for (const [name, read] of this.#gauges) {
      if (this.#help.has(name)) lines.push(`# HELP ${name} ${this.#help.get(name)}`);
      lines.push(`# TYPE ${name} gauge`, `${name} ${read()}`);
    }
    for (const c of this.#collectors) lines.push(c().trimEnd());
    return lines.join("\n") + "\n";
  }
}
