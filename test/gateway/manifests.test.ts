/**
 * deploy/k8s/gateway is true to the code: every file the kustomization lists parses as a Kubernetes
 * object, the Deployment runs the file `npm run build` emits (and the Dockerfile's CMD is the same
 * command, as the same user), the ports and probes name endpoints the gateway serves, and the
 * ConfigMap's settings are accepted by the gateway's own configuration loader. (Server-side dry runs
 * against a real API server live in test/k8s.)
 */
import * as k8s from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../src/gateway/config';

const ROOT = path.resolve(__dirname, '../..');
const DIR = path.join(ROOT, 'deploy/k8s/gateway');

interface Doc {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  [k: string]: unknown;
}

function docs(file: string): Doc[] {
  return (k8s.loadAllYaml(readFileSync(path.join(DIR, file), 'utf8')) as Array<Doc | null>).filter(
    (d): d is Doc => d !== null,
  );
}

const kustomization = docs('kustomization.yaml')[0] as { resources: string[] };
const all = kustomization.resources.flatMap((f) => docs(f).map((d) => ({ file: f, doc: d })));
const byKind = (kind: string): Doc => {
  const found = all.find((x) => x.doc.kind === kind);
  if (!found) throw new Error(`no ${kind} in deploy/k8s/gateway`);
  return found.doc;
};

interface Container {
  image: string;
  command: string[];
  ports: Array<{ name: string; containerPort: number }>;
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  startupProbe: { httpGet: { path: string; port: string } };
}
const deployment = byKind('Deployment') as Doc & {
  spec: {
    template: {
      spec: { containers: Container[]; securityContext: { runAsUser: number; runAsGroup: number } };
    };
  };
};
const container = deployment.spec.template.spec.containers[0] as Container;

describe('deploy/k8s/gateway manifests', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlops-gw-manifests-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('parses every listed resource into a named, namespaced object', () => {
    expect(kustomization.resources.length).toBeGreaterThanOrEqual(6);
    for (const { file, doc } of all) {
      expect(doc.apiVersion, file).toMatch(/^[a-z0-9./]+$/);
      expect(doc.kind, file).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(doc.metadata?.name, file).toBe('mlops-gateway');
      expect(doc.metadata?.namespace, file).toBe('mlops');
    }
    expect(all.map((x) => x.doc.kind).sort()).toEqual(
      [
        'ConfigMap',
        'Deployment',
        'HorizontalPodAutoscaler',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'Service',
      ].sort(),
    );
  });

  it('runs what `npm run build` emits, as the Dockerfile does, as the same user', () => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'pipe', timeout: 120_000 });
    const [node, script] = container.command as [string, string];
    expect(node).toBe('node');
    expect(script.startsWith('/app/')).toBe(true);
    const built = path.join(ROOT, script.slice('/app/'.length));
    expect(existsSync(built), built).toBe(true);
    // The cluster primary forks its workers from the file beside the entry (src/gateway/index.ts).
    expect(existsSync(path.join(path.dirname(built), 'worker-main.js'))).toBe(true);

    const dockerfile = readFileSync(path.join(DIR, 'Dockerfile'), 'utf8');
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(cmd ?? 'null')).toEqual(container.command);
    expect(dockerfile).toMatch(/^WORKDIR \/app$/m);
    expect(dockerfile).toMatch(/^RUN npm run build/m);
    const user = /^USER (\d+):(\d+)$/m.exec(dockerfile);
    const pod = deployment.spec.template.spec.securityContext;
    expect([Number(user?.[1]), Number(user?.[2])]).toEqual([pod.runAsUser, pod.runAsGroup]);
    expect(container.image).toBe('mlops/gateway:latest');
    expect(dockerfile).toContain('-t mlops/gateway:latest');
  });

  it('probes and exposes endpoints the gateway serves, on the configured port', () => {
    const http = container.ports.find((p) => p.name === 'http');
    expect(http?.containerPort).toBe(8080);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.startupProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    const service = byKind('Service') as Doc & { spec: { ports: Array<{ targetPort: string }> } };
    expect(service.spec.ports.map((p) => p.targetPort)).toEqual(['http']);
  });

  it("has a ConfigMap the gateway's configuration loader accepts", () => {
    const data = (byKind('ConfigMap') as Doc & { data: Record<string, string> }).data;
    // The key files are mounted from the Secret in a pod; here they are stand-ins with the same shape.
    const keys = path.join(tmp, 'keys.json');
    writeFileSync(keys, JSON.stringify([{ principal: 'svc', sha256: 'a'.repeat(64), roles: ['predict'] }]));
    const config = loadGatewayConfig({
      ...data,
      MLOPS_GATEWAY_API_KEYS_FILE: keys,
      MLOPS_GATEWAY_ADMIN_KEYS_FILE: keys,
    });
    expect(config.port).toBe(container.ports[0]?.containerPort);
    expect(config.workers).toBe(2);
    expect(config.rateLimit.backend).toBe('redis');
    expect(config.models.map((m) => m.name)).toEqual(['fraud']);
    expect(config.temporal?.address).toBe(data.TEMPORAL_ADDRESS);
  });
});
