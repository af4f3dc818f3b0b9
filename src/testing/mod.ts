/**
 * Test doubles for the gateway's injected ports: clock, datagram ports, logger, door transport.
 * Tests, simulators' tests and benches import them from here; product modules never do.
 *
 * @module
 */

export { FakeClock } from "./fake_clock.ts";
export { MemoryNetwork, MemoryPort } from "./memory_network.ts";
export { memoryLogger, nullLogger } from "./memory_logger.ts";
export { FakeDoor, type PendingAsk } from "./fake_door.ts";
