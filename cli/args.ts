// Parsers of option values, shared by every command: each says what was wrong.
import { InvalidArgumentError } from 'commander';

export const positiveInt = (what: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive whole number`);
  return n;
};

export const positiveNumber = (what: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`);
  return n;
};

export const portNumber = (what: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`${what} must be a port number, 1 to 65535`);
  return n;
};

export const label = (v: string, prev: Record<string, string> = {}): Record<string, string> => {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError('labels look like key=value');
  return { ...prev, [v.slice(0, i)]: v.slice(i + 1) };
};

export const nonNegativeInt = (what: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a whole number, 0 or more`);
  return n;
};

/** A repeatable NATS subject token (letters, digits, - or _), collected into a list. */
export const tokenList = (what: string) => (v: string, prev: string[] = []): string[] => {
  if (!/^[A-Za-z0-9_-]+$/.test(v)) throw new InvalidArgumentError(`${what} must be one subject token: letters, digits, - or _`);
  return [...prev, v];
};
