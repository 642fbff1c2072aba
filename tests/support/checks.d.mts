// Types for checks.mjs, for the suites written in TypeScript (the OpenAPI client check).
export function check(name: string, test: () => unknown): Promise<void>;
export function assert(condition: unknown, message: string): asserts condition;
export function eventually<T>(probe: () => T | Promise<T>, message: string, timeout?: number): Promise<T>;
export function finish(suite: string): never;
