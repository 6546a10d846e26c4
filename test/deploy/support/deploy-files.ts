import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import * as YAML from 'yaml';
import type { z } from 'zod';

import { schemasByApp } from '@payorch/config';
import { REPO_ROOT } from '@payorch/testing';

/** Reads deploy/ as an operator's tools would: Compose with its interpolation, Kustomize overlays, the Dockerfile. */

export const DEPLOY = path.join(REPO_ROOT, 'deploy');
export type AppName = keyof typeof schemasByApp;
export const APPS = Object.keys(schemasByApp) as AppName[];

/** Variables of an app's zod schema that have no default (the deployment must provide them). */
export function requiredKeys(app: AppName): string[] {
  const shape = (schemasByApp[app] as unknown as z.ZodObject).shape;
  return Object.entries(shape)
    .filter(([, field]) => !(field as z.ZodType).safeParse(undefined).success)
    .map(([name]) => name)
    .sort();
}

/** The app a container runs, from its command (`node dist/apps/<app>/main.js`). */
export function appOfCommand(command: unknown): AppName | null {
  const text = Array.isArray(command) ? command.join(' ') : String(command ?? '');
  const match = /dist\/apps\/([a-z-]+)\/main\.js/.exec(text);
  return match && (APPS as string[]).includes(match[1]!) ? (match[1] as AppName) : null;
}

// ---------------------------------------------------------------------------------------------------------
// Compose

export interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  volumes?: string[];
  [key: string]: unknown;
}

/** `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}` as Docker Compose interpolates them. */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (_all, name: string, op: string | undefined, arg: string | undefined) => {
    const value = env[name];
    const unset = op?.startsWith(':') ? value === undefined || value === '' : value === undefined;
    if (op?.endsWith('?') && unset) throw new Error(`compose: ${name}: ${arg}`);
    if (op?.endsWith('-') && unset) return arg ?? '';
    return value ?? '';
  });
}

/** deploy/compose.yaml after interpolation with `env` (merge keys resolved). */
export function loadCompose(env: Record<string, string | undefined>): { services: Record<string, ComposeService>; raw: string } {
  const raw = readFileSync(path.join(DEPLOY, 'compose.yaml'), 'utf8');
  // Compose interpolates the parsed string values (so `KEY: ${X:-}` is an empty string, not YAML null).
  const walk = (value: unknown): unknown =>
    typeof value === 'string'
      ? interpolate(value, env)
      : Array.isArray(value)
        ? value.map(walk)
        : typeof value === 'object' && value !== null
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]))
          : value;
  const doc = walk(YAML.parse(raw, { merge: true })) as { services: Record<string, ComposeService> };
  return { services: doc.services, raw };
}

/** Sample values for deploy/.env (what an operator fills in). */
export const SAMPLE_ENV: Record<string, string> = {
  POSTGRES_PASSWORD: 'owner-password',
  DATABASE_APP_PASSWORD: 'app-password',
  PAYORCH_MASTER_KEY: `k1:${Buffer.alloc(32, 9).toString('base64')}`,
};

// ---------------------------------------------------------------------------------------------------------
// Kubernetes

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}

export const hasKubectl = (): boolean => spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).stdout.trim() !== '';

/** `kubectl kustomize <dir>` (Kustomize v5), parsed. */
export function kubectlKustomize(dir: string): K8sObject[] {
  const out = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${out.stderr}`);
  return parseDocs(out.stdout);
}

function parseDocs(text: string): K8sObject[] {
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJSON() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null);
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass']);

/**
 * The subset of Kustomize deploy/k8s uses, for machines without kubectl: resources (files and bases),
 * `labels` (metadata only), `namespace`, `images` (newName/newTag) and strategic-merge `patches` matched by
 * kind + name (maps merge; lists of named items merge by name; other lists are replaced).
 * manifests.deploy-spec.ts checks it renders exactly what `kubectl kustomize` renders where kubectl exists.
 */
export function miniKustomize(dir: string): K8sObject[] {
  const k = YAML.parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as {
    resources?: string[];
    namespace?: string;
    labels?: Array<{ pairs: Record<string, string> }>;
    images?: Array<{ name: string; newName?: string; newTag?: string }>;
    patches?: Array<{ path: string }>;
  };
  let objects: K8sObject[] = [];
  for (const resource of k.resources ?? []) {
    const target = path.join(dir, resource);
    objects.push(...(statSync(target).isDirectory() ? miniKustomize(target) : parseDocs(readFileSync(target, 'utf8'))));
  }
  for (const patchFile of k.patches ?? []) {
    for (const patch of parseDocs(readFileSync(path.join(dir, patchFile.path), 'utf8'))) {
      const index = objects.findIndex((o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name);
      if (index < 0) throw new Error(`patch ${patch.kind}/${patch.metadata.name}: no such resource`);
      objects[index] = strategicMerge(objects[index], patch) as K8sObject;
    }
  }
  objects = objects.map((o) => {
    const copy = structuredClone(o);
    for (const { pairs } of k.labels ?? []) copy.metadata.labels = { ...copy.metadata.labels, ...pairs };
    if (k.namespace && !CLUSTER_SCOPED.has(copy.kind)) copy.metadata.namespace = k.namespace;
    for (const container of containersOf(copy)) {
      const [name, tag] = splitImage(container.image);
      const rule = k.images?.find((i) => i.name === name);
      if (rule) container.image = `${rule.newName ?? name}:${rule.newTag ?? tag}`;
    }
    return copy;
  });
  return objects;
}

function strategicMerge(base: unknown, patch: unknown): unknown {
  if (Array.isArray(base) && Array.isArray(patch)) {
    const named = (list: unknown[]) => list.every((item) => typeof item === 'object' && item !== null && 'name' in item);
    if (!named(base) || !named(patch)) return patch;
    const merged = [...base] as Array<{ name: string }>;
    for (const item of patch as Array<{ name: string }>) {
      const at = merged.findIndex((m) => m.name === item.name);
      if (at < 0) merged.push(item);
      else merged[at] = strategicMerge(merged[at], item) as { name: string };
    }
    return merged;
  }
  if (isMap(base) && isMap(patch)) {
    const out: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(patch)) out[key] = key in out ? strategicMerge(out[key], value) : value;
    return out;
  }
  return patch;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function splitImage(image: string): [string, string | undefined] {
  const at = image.lastIndexOf(':');
  return at > image.lastIndexOf('/') ? [image.slice(0, at), image.slice(at + 1)] : [image, undefined];
}

export interface K8sContainer {
  name: string;
  image: string;
  command?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
}

/** Pod template spec of a Deployment or Job (null for other kinds). */
export function podSpecOf(o: K8sObject): { containers: K8sContainer[]; securityContext?: K8sContainer['securityContext'] } | null {
  if (o.kind === 'Deployment' || o.kind === 'Job') return o.spec.template.spec;
  return null;
}

export function containersOf(o: K8sObject): K8sContainer[] {
  return podSpecOf(o)?.containers ?? [];
}

/** Every overlay under deploy/k8s/overlays. */
export function overlays(): string[] {
  const dir = path.join(DEPLOY, 'k8s/overlays');
  return readdirSync(dir).filter((name) => existsSync(path.join(dir, name, 'kustomization.yaml')));
}

// ---------------------------------------------------------------------------------------------------------
// Dockerfile

export interface DockerStage {
  from: string;
  name: string;
  instructions: Array<{ op: string; args: string }>;
}

/** The stages of deploy/docker/Dockerfile (continuation lines joined, comments dropped) and its global ARGs. */
export function loadDockerfile(): { args: Record<string, string>; stages: DockerStage[] } {
  const text = readFileSync(path.join(DEPLOY, 'docker/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const args: Record<string, string> = {};
  const stages: DockerStage[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(trimmed) ?? [];
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const [, from = '', name = ''] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(rest) ?? [];
      stages.push({ from, name, instructions: [] });
    } else if (upper === 'ARG' && stages.length === 0) {
      const [name, value = ''] = rest.split('=');
      args[name!] = value;
    } else {
      stages.at(-1)?.instructions.push({ op: upper, args: rest });
    }
  }
  return { args, stages };
}

/** A stage's instructions including those of the stages it is built FROM (the target's effective settings). */
export function effectiveInstructions(stages: DockerStage[], name: string): Array<{ op: string; args: string }> {
  const stage = stages.find((s) => s.name === name);
  if (!stage) throw new Error(`no stage ${name}`);
  const parent = stages.find((s) => s.name === stage.from);
  return [...(parent ? effectiveInstructions(stages, parent.name) : []), ...stage.instructions];
}

// ---------------------------------------------------------------------------------------------------------
// nginx

/** One directive of an nginx configuration: its name, its arguments (quotes removed) and its block, if it has one. */
export interface NginxDirective {
  name: string;
  args: string[];
  block?: NginxDirective[];
}

/**
 * An nginx configuration as nginx reads it: a directive is words up to `;` or up to a `{ … }` block; `#` starts a
 * comment outside quotes; '…' and "…" are one word (backslash escapes kept as the escaped character).
 */
export function parseNginx(text: string): NginxDirective[] {
  /** A word, or one of `{`, `}`, `;` outside quotes (`punct`). */
  const tokens: Array<{ text: string; punct: boolean }> = [];
  for (let i = 0; i < text.length;) {
    const c = text[i]!;
    if (/\s/.test(c)) i++;
    else if (c === '#') i = text.indexOf('\n', i) < 0 ? text.length : text.indexOf('\n', i);
    else if (c === '{' || c === '}' || c === ';') tokens.push({ text: text[i++]!, punct: true });
    else if (c === "'" || c === '"') {
      let word = '';
      for (i++; i < text.length && text[i] !== c; i++) word += text[i] === '\\' ? text[++i] : text[i];
      if (i++ >= text.length) throw new Error('nginx: unterminated quoted string');
      tokens.push({ text: word, punct: false });
    } else {
      const end = text.slice(i).search(/[\s{};]/);
      const word = end < 0 ? text.slice(i) : text.slice(i, i + end);
      tokens.push({ text: word, punct: false });
      i += word.length;
    }
  }
  let at = 0;
  const block = (nested: boolean): NginxDirective[] => {
    const list: NginxDirective[] = [];
    while (at < tokens.length && !(tokens[at]!.punct && tokens[at]!.text === '}')) {
      const words: string[] = [];
      while (at < tokens.length && !tokens[at]!.punct) words.push(tokens[at++]!.text);
      const [name, ...args] = words;
      const end = tokens[at++];
      if (name === undefined || !end) throw new Error(`nginx: a directive ${name ?? 'without a name'} not ended by ; or {`);
      if (end.text === ';') list.push({ name, args });
      else if (end.text === '{') {
        list.push({ name, args, block: block(true) });
        if (tokens[at++]?.text !== '}') throw new Error(`nginx: the block of ${name} is not closed`);
      } else throw new Error(`nginx: unexpected } after ${name}`);
    }
    if (!nested && at < tokens.length) throw new Error('nginx: unexpected }');
    return list;
  };
  return block(false);
}

/** deploy/nginx/nginx.conf, parsed. */
export function loadNginx(): NginxDirective[] {
  return parseNginx(readFileSync(path.join(DEPLOY, 'nginx/nginx.conf'), 'utf8'));
}

/** The directives named `name` directly inside `within`. */
export function directives(within: NginxDirective[] | undefined, name: string): NginxDirective[] {
  return (within ?? []).filter((d) => d.name === name);
}
