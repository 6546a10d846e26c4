import type { NextFunction, Response } from 'express';

import { ApiError } from '@payorch/domain';

import type { PayorchRequest } from './request-context';
import type { FieldIssue } from './zod';

/** Deepest JSON nesting accepted (the root object is level 1); no DTO comes close. */
export const MAX_JSON_DEPTH = 32;
/** Largest JSON body accepted (body-parser `limit`); larger → 413. */
export const MAX_JSON_BODY = '256kb';

const NUL = /\u0000/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNPRINTABLE = /[\u0000-\u001f\uD800-\uDFFF]/g;

/** Why a string may not enter the system, or null. PostgreSQL rejects NUL in text (a 500); a lone surrogate is not Unicode. */
export function badString(value: string): string | null {
  if (NUL.test(value)) return 'must not contain NUL (\\u0000)';
  if (LONE_SURROGATE.test(value)) return 'must not contain a lone UTF-16 surrogate';
  return null;
}

/** A path segment as it can be shown back: control characters and surrogates as `\uXXXX`. */
const printable = (segment: string | number) => String(segment).replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * The first problem of a parsed JSON value (or query object): nesting deeper than `maxDepth`, or a string
 * — value or key — that `badString` refuses. Iterative with an explicit stack, so no input can overflow
 * the call stack; it stops descending at `maxDepth`, so its work is bounded by the body size.
 */
export function inspectValue(root: unknown, maxDepth = MAX_JSON_DEPTH): FieldIssue | null {
  const issue = (path: readonly (string | number)[], message: string): FieldIssue => ({
    field: path.map(printable).join('.') || '(body)',
    message,
  });
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: root, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = badString(value);
      if (problem) return issue(path, problem);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= maxDepth) return issue(path, `is nested deeper than ${maxDepth} levels`);
    const entries: [string | number, unknown][] = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      : Object.keys(value).map((k) => [k, (value as Record<string, unknown>)[k]]);
    // Reverse, so the first offending member (in document order) is found first.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i]!;
      if (typeof key === 'string') {
        const problem = badString(key);
        if (problem) return issue([...path, key], `key ${problem}`);
      }
      stack.push({ value: child, path: [...path, key] });
    }
  }
  return null;
}

const invalid = (where: string, issue: FieldIssue) =>
  new ApiError('VALIDATION_FAILED', `invalid ${where}: ${issue.field}: ${issue.message}`, { issues: [issue] });

/**
 * Runs after the JSON parser and before routing, guards, interceptors and pipes: the body (depth, strings
 * and keys), the query string and the path segments (which become path params) are refused with a 400
 * naming the field when `inspectValue` / `badString` finds a problem. One place for every route, not per DTO.
 */
export function inputHygiene(req: PayorchRequest, _res: Response, next: NextFunction): void {
  const body = inspectValue(req.body);
  if (body) return next(invalid('body', body));
  const query = inspectValue(req.query);
  if (query) return next(invalid('query', query));
  const segments = req.path.split('/');
  for (let i = 0; i < segments.length; i++) {
    let segment: string;
    try {
      segment = decodeURIComponent(segments[i]!);
    } catch {
      continue; // malformed %-encoding: the router answers it with a 400 of its own
    }
    const problem = badString(segment);
    if (problem) return next(invalid('path', { field: `(path segment ${i})`, message: problem }));
  }
  next();
}
