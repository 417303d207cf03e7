/**
 * A real Kubernetes control plane on 127.0.0.1 for the integration tests and a local demo: etcd,
 * kube-apiserver (TLS with a generated CA, static-token authentication, RBAC authorization),
 * kube-controller-manager (the Job, garbage-collector, namespace and service-account controllers
 * among others), kube-scheduler, KWOK playing the kubelet of simulated GPU nodes (including the
 * kubelet API for pod logs, over TLS on loopback), and Kueue for
 * queue admission with its webhooks served on loopback. Every process is supervised (its own process
 * group, log file under the state folder) and stopped by `stop()` or at exit.
 *
 * Control-plane components and the two controllers (KWOK, Kueue) authenticate with tokens of the
 * `system:masters` group: this cluster exists to test what the project's own worker may do, so the
 * worker's ServiceAccount is the identity held to least privilege (deploy/k8s/worker).
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { ensureKubeTools, type KubeTools } from './kube-tools';
import { freePort, startManaged, waitUntilHealthy, type ManagedProcess } from './process';
import { MissingPrerequisiteError, which } from './provision';

/** etcd and the API server start in seconds; a loaded 2-core machine needs more. */
export const KUBE_START_TIMEOUT_MS = 120_000;
/** Kueue starts its controllers and webhook server after its caches sync. */
export const KUEUE_START_TIMEOUT_MS = 120_000;
/** Service network of the cluster (nothing routes it: no kube-proxy runs). */
const SERVICE_CIDR = '10.96.0.0/16';
/** First address of SERVICE_CIDR: the `kubernetes` Service, named in the serving certificate. */
const KUBERNETES_SERVICE_IP = '10.96.0.1';
/** Issuer and audience of ServiceAccount tokens. */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/** Validity of the generated certificates (the cluster lives for one test run). */
const CERT_DAYS = 30;
/** Annotation that hands a Node to KWOK (its default selector). */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
/** Namespace Kueue runs in (its webhook configurations name it). */
const KUEUE_NAMESPACE = 'kueue-system';
/** Kueue's defaults for its webhook Service and certificate Secret, and its CA's name. */
const KUEUE_WEBHOOK_SERVICE = 'kueue-webhook-service';
const KUEUE_WEBHOOK_SECRET = 'kueue-webhook-server-cert';
const KUEUE_CA_NAME = 'kueue-ca';
/** Longer than the 90 days Kueue's certificate rotator looks ahead before it replaces a certificate. */
const KUEUE_CERT_DAYS = 365;
/** Kueue CRDs that convert between v1beta1 and v1beta2 through its webhook (as its release installs them). */
const KUEUE_CONVERTED_CRDS = new Set([
  'localqueues.kueue.x-k8s.io',
  'clusterqueues.kueue.x-k8s.io',
  'workloads.kueue.x-k8s.io',
  'cohorts.kueue.x-k8s.io',
  'multikueueclusters.kueue.x-k8s.io',
]);

export interface GpuNodeSpec {
  name: string;
  gpus: number;
  labels?: Record<string, string>;
  taints?: k8s.V1Taint[];
}

export interface KubeCluster {
  /** `https://127.0.0.1:<port>` */
  server: string;
  caFile: string;
  /** A token of the `system:masters` group. */
  adminToken: string;
  /** A kubeconfig file for the admin token (for tools such as kubectl). */
  adminKubeconfig: string;
  /** A client configuration for `token` (the admin's when omitted). */
  kubeConfig(token?: string): k8s.KubeConfig;
  tools: KubeTools;
  logDir: string;
  stop(): Promise<void>;
}

function pem(dir: string, name: string): { key: string; crt: string } {
  return { key: path.join(dir, `${name}.key`), crt: path.join(dir, `${name}.crt`) };
}

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
}

/** A CA, serving certificates for the API server and Kueue's webhooks, and the ServiceAccount key pair. */
function makePki(dir: string): {
  ca: string;
  apiserver: { key: string; crt: string };
  webhook: ReturnType<typeof kueuePki>;
  kubelet: { key: string; crt: string };
  saKey: string;
  saPub: string;
  caKey: string;
} {
  if (!which('openssl')) {
    throw new MissingPrerequisiteError(
      'openssl is required to create the test cluster certificates: apt-get install openssl',
    );
  }
  mkdirSync(dir, { recursive: true });
  const ca = pem(dir, 'ca');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    ca.key,
    '-out',
    ca.crt,
    '-days',
    String(CERT_DAYS),
    '-subj',
    '/CN=mlops-test-cluster-ca',
  ]);
  const serving = (name: string, sans: string): { key: string; crt: string } => {
    const p = pem(dir, name);
    const csr = path.join(dir, `${name}.csr`);
    const ext = path.join(dir, `${name}.ext`);
    writeFileSync(
      ext,
      `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
    );
    openssl(['req', ...ec, '-keyout', p.key, '-out', csr, '-subj', `/CN=${name}`]);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.crt,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-out',
      p.crt,
      '-days',
      String(CERT_DAYS),
      '-extfile',
      ext,
    ]);
    return p;
  };
  const apiserver = serving(
    'kube-apiserver',
    `IP:127.0.0.1,IP:${KUBERNETES_SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local`,
  );
  const webhook = kueuePki(dir);
  // KWOK serves the kubelet API (pod logs) for every simulated node on one loopback port.
  const kubelet = serving('kwok-kubelet', 'IP:127.0.0.1,DNS:localhost');
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saKey = path.join(dir, 'sa.key');
  const saPub = path.join(dir, 'sa.pub');
  writeFileSync(saKey, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(saPub, sa.publicKey.export({ type: 'spki', format: 'pem' }));
  return { ca: ca.crt, caKey: ca.key, apiserver, webhook, kubelet, saKey, saPub };
}

/**
 * Kueue's webhook certificates, in the form its certificate rotator accepts as current (so it keeps
 * them instead of minting its own): an RSA CA in PKCS#1 named `kueue-ca`, a serving certificate for
 * its Service name plus 127.0.0.1 (where the API server calls it here), both valid for longer than
 * the rotator's 90-day look-ahead.
 */
function kueuePki(dir: string): { key: string; crt: string; caKey: string; caCrt: string } {
  const ca = pem(dir, 'kueue-ca');
  openssl(['genrsa', '-traditional', '-out', ca.key, '2048']);
  openssl([
    'req',
    '-x509',
    '-key',
    ca.key,
    '-out',
    ca.crt,
    '-days',
    String(KUEUE_CERT_DAYS),
    '-subj',
    `/O=kueue/CN=${KUEUE_CA_NAME}`,
    '-addext',
    `subjectAltName=DNS:${KUEUE_CA_NAME}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,digitalSignature,keyEncipherment',
  ]);
  const p = pem(dir, 'kueue-webhook');
  const csr = path.join(dir, 'kueue-webhook.csr');
  const ext = path.join(dir, 'kueue-webhook.ext');
  writeFileSync(
    ext,
    `subjectAltName=DNS:${KUEUE_WEBHOOK_SERVICE}.${KUEUE_NAMESPACE}.svc,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    p.key,
    '-out',
    csr,
    '-subj',
    '/CN=kueue-webhook',
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.crt,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    p.crt,
    '-days',
    String(KUEUE_CERT_DAYS),
    '-extfile',
    ext,
  ]);
  return { ...p, caKey: ca.key, caCrt: ca.crt };
}

function kubeconfigYaml(server: string, caFile: string, user: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: mlops-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority: ${caFile}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: mlops-test',
    '  context:',
    '    cluster: mlops-test',
    `    user: ${user}`,
    'current-context: mlops-test',
    '',
  ].join('\n');
}

function httpsGet(url: string, ca: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      { ca, headers: token ? { Authorization: `Bearer ${token}` } : {}, timeout: 5_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return res.ok;
}

/** Server-side applies every object (creating or updating it) as field manager `mlops-test-cluster`. */
export async function applyObjects(kc: k8s.KubeConfig, objects: k8s.KubernetesObject[]): Promise<void> {
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  for (const obj of objects) {
    await client.patch(
      obj,
      undefined,
      undefined,
      'mlops-test-cluster',
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
  }
}

/** Parses multi-document YAML into objects (empty documents dropped). */
export function loadManifests(text: string): k8s.KubernetesObject[] {
  return (k8s.loadAllYaml(text) as (k8s.KubernetesObject | null)[]).filter(
    (o): o is k8s.KubernetesObject => o !== null && typeof o === 'object' && typeof o.kind === 'string',
  );
}

async function poll<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `${what} not ready within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`,
  );
}

/** API groups whose Kueue webhooks this cluster registers: Jobs and Kueue's own objects. */
const KUEUE_WEBHOOK_GROUPS = new Set(['batch', 'kueue.x-k8s.io']);

/**
 * Kueue's webhook configurations from its module, named as its release names them (`kueue-`
 * prefix, which its certificate rotator looks for), pointed at the webhook server on 127.0.0.1
 * (the API server cannot reach a Service: no kube-proxy runs) and trusting Kueue's CA. Only the
 * webhooks for Jobs and Kueue's own objects are kept: the others would intercept every pod,
 * Deployment and StatefulSet of the cluster for integrations that are not enabled.
 */
export function kueueWebhooksOnLoopback(
  manifests: string,
  port: number,
  caPem: string,
): k8s.KubernetesObject[] {
  const caBundle = Buffer.from(caPem).toString('base64');
  return loadManifests(manifests).map((obj) => {
    const o = obj as k8s.KubernetesObject & {
      webhooks?: {
        clientConfig: { service?: { path?: string }; url?: string; caBundle?: string };
        rules?: { apiGroups?: string[] }[];
      }[];
    };
    o.metadata = { ...o.metadata, name: `kueue-${o.metadata?.name ?? ''}` };
    o.webhooks = (o.webhooks ?? []).filter((w) =>
      (w.rules ?? []).some((r) => (r.apiGroups ?? []).some((g) => KUEUE_WEBHOOK_GROUPS.has(g))),
    );
    for (const w of o.webhooks) {
      const p = w.clientConfig.service?.path ?? '/';
      w.clientConfig = { url: `https://127.0.0.1:${port}${p}`, caBundle };
    }
    return o;
  });
}

export interface StartKubeClusterOptions {
  stateDir: string;
  /** Simulated GPU nodes to register with KWOK. */
  gpuNodes?: GpuNodeSpec[];
  /** Start Kueue (CRDs, webhooks, controller). Default true. */
  kueue?: boolean;
  /** Extra KWOK configuration files: stages (test-only failure simulations), ClusterLogs. */
  extraKwokStages?: string[];
  log?: (line: string) => void;
}

export async function startKubeCluster(opts: StartKubeClusterOptions): Promise<KubeCluster> {
  const log = opts.log ?? ((line: string) => console.log(`[kube] ${line}`));
  const tools = ensureKubeTools();
  const dir = path.resolve(opts.stateDir);
  const logDir = path.join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const procs: ManagedProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs.reverse()) await p.stop();
  };
  try {
    const started = Date.now();
    const pki = makePki(path.join(dir, 'pki'));
    const caPem = readFileSync(pki.ca, 'utf8');
    const tokens = {
      admin: randomBytes(24).toString('hex'),
      controllerManager: randomBytes(24).toString('hex'),
      scheduler: randomBytes(24).toString('hex'),
      kwok: randomBytes(24).toString('hex'),
      kueue: randomBytes(24).toString('hex'),
    };
    const tokenFile = path.join(dir, 'pki', 'tokens.csv');
    writeFileSync(
      tokenFile,
      [
        `${tokens.admin},mlops-admin,uid-admin,"system:masters"`,
        `${tokens.controllerManager},system:kube-controller-manager,uid-kcm,"system:masters"`,
        `${tokens.scheduler},system:kube-scheduler,uid-sched,"system:masters"`,
        `${tokens.kwok},kwok-controller,uid-kwok,"system:masters"`,
        `${tokens.kueue},kueue-controller,uid-kueue,"system:masters"`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );

    const etcdPort = await freePort();
    const etcdPeerPort = await freePort();
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = startManaged(
      'etcd',
      tools.etcd,
      [
        '--name=mlops-test',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=mlops-test=http://127.0.0.1:${etcdPeerPort}`,
        '--listen-metrics-urls=',
        '--log-level=warn',
        // A test cluster: skip the fsync per write (the data dir is thrown away).
        '--unsafe-no-fsync',
      ],
      { logFile: path.join(logDir, 'etcd.log') },
    );
    procs.push(etcd);
    await waitUntilHealthy(etcd, () => httpOk(`${etcdUrl}/health`), KUBE_START_TIMEOUT_MS);

    const apiPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = startManaged(
      'kube-apiserver',
      tools.apiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        // The `kubernetes` Service's endpoints may not be a loopback address: nothing in this
        // cluster dials the Service anyway (no kube-proxy), so no endpoint reconciler runs.
        '--endpoint-reconciler-type=none',
        `--secure-port=${apiPort}`,
        `--tls-cert-file=${pki.apiserver.crt}`,
        `--tls-private-key-file=${pki.apiserver.key}`,
        `--client-ca-file=${pki.ca}`,
        `--token-auth-file=${tokenFile}`,
        '--authorization-mode=RBAC',
        '--anonymous-auth=false',
        `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
        `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
        `--service-account-key-file=${pki.saPub}`,
        `--service-account-signing-key-file=${pki.saKey}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        '--allow-privileged=false',
        '--profiling=false',
        // Pod logs: the API server calls KWOK's kubelet API at the node's InternalIP (127.0.0.1),
        // verifying its certificate against the cluster CA.
        '--kubelet-preferred-address-types=InternalIP',
        `--kubelet-certificate-authority=${pki.ca}`,
      ],
      { logFile: path.join(logDir, 'kube-apiserver.log') },
    );
    procs.push(apiserver);
    await waitUntilHealthy(
      apiserver,
      async () => (await httpsGet(`${server}/readyz`, caPem, tokens.admin)).status === 200,
      KUBE_START_TIMEOUT_MS,
    );
    log(`kube-apiserver ready at ${server} (${Date.now() - started} ms)`);

    const kubeconfigFor = (name: string, token: string): string => {
      const f = path.join(dir, `${name}.kubeconfig`);
      writeFileSync(f, kubeconfigYaml(server, pki.ca, name, token), { mode: 0o600 });
      return f;
    };
    const adminKubeconfig = kubeconfigFor('admin', tokens.admin);
    const kcmKubeconfig = kubeconfigFor('kube-controller-manager', tokens.controllerManager);
    const controllerManager = startManaged(
      'kube-controller-manager',
      tools.controllerManager,
      [
        `--kubeconfig=${kcmKubeconfig}`,
        `--authentication-kubeconfig=${kcmKubeconfig}`,
        `--authorization-kubeconfig=${kcmKubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${await freePort()}`,
        '--leader-elect=false',
        `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${pki.ca}`,
        '--use-service-account-credentials=false',
        // The node lifecycle controller lifts the not-ready taint a new Node is admitted with; KWOK
        // heartbeats every 20-45 s, so give nodes an hour before they count as lost.
        '--node-monitor-grace-period=1h',
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        '--profiling=false',
      ],
      { logFile: path.join(logDir, 'kube-controller-manager.log') },
    );
    procs.push(controllerManager);
    const schedKubeconfig = kubeconfigFor('kube-scheduler', tokens.scheduler);
    const scheduler = startManaged(
      'kube-scheduler',
      tools.scheduler,
      [
        `--kubeconfig=${schedKubeconfig}`,
        `--authentication-kubeconfig=${schedKubeconfig}`,
        `--authorization-kubeconfig=${schedKubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${await freePort()}`,
        '--leader-elect=false',
        '--profiling=false',
      ],
      { logFile: path.join(logDir, 'kube-scheduler.log') },
    );
    procs.push(scheduler);

    const kubeConfig = (token: string = tokens.admin): k8s.KubeConfig => {
      const kc = new k8s.KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'mlops-test', server, caData: Buffer.from(caPem).toString('base64') }],
        users: [{ name: 'user', token }],
        contexts: [{ name: 'mlops-test', cluster: 'mlops-test', user: 'user' }],
        currentContext: 'mlops-test',
      });
      return kc;
    };
    const admin = kubeConfig();
    const core = admin.makeApiClient(k8s.CoreV1Api);
    // The controller manager is up once it created the default ServiceAccount.
    await poll(
      'the default ServiceAccount (kube-controller-manager)',
      KUBE_START_TIMEOUT_MS,
      async () =>
        (await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })) ?? undefined,
    );

    const kwokStages = path.join(dir, 'kwok-stages.yaml');
    writeFileSync(
      kwokStages,
      [...tools.kwokStages, ...(opts.extraKwokStages ?? [])]
        .map((f) => readFileSync(f, 'utf8').trim())
        .join('\n---\n') + '\n',
    );
    const kwokKubeconfig = kubeconfigFor('kwok', tokens.kwok);
    const kubeletPort = await freePort();
    const kwok = startManaged(
      'kwok',
      tools.kwok,
      [
        `--kubeconfig=${kwokKubeconfig}`,
        `--config=${kwokStages}`,
        '--manage-all-nodes=false',
        `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
        '--node-ip=127.0.0.1',
        '--cidr=10.244.0.0/16',
        `--server-address=127.0.0.1:${kubeletPort}`,
        `--node-port=${kubeletPort}`,
        `--tls-cert-file=${pki.kubelet.crt}`,
        `--tls-private-key-file=${pki.kubelet.key}`,
      ],
      { logFile: path.join(logDir, 'kwok.log') },
    );
    procs.push(kwok);
    for (const node of opts.gpuNodes ?? []) await registerGpuNode(admin, node);

    if (opts.kueue ?? true) {
      await startKueue({ tools, dir, logDir, admin, pki, procs, token: tokens.kueue, kubeconfigFor });
      log(`Kueue ready (${Date.now() - started} ms since start)`);
    }
    return {
      server,
      caFile: pki.ca,
      adminToken: tokens.admin,
      adminKubeconfig,
      kubeConfig,
      tools,
      logDir,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Registers a Node for KWOK that advertises `gpus` of `nvidia.com/gpu`. */
export async function registerGpuNode(admin: k8s.KubeConfig, spec: GpuNodeSpec): Promise<void> {
  const capacity = { cpu: '32', memory: '256Gi', pods: '110', 'nvidia.com/gpu': String(spec.gpus) };
  const node: k8s.V1Node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': spec.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        ...spec.labels,
      },
    },
    spec: { taints: spec.taints ?? [] },
    status: { capacity, allocatable: capacity },
  };
  const core = admin.makeApiClient(k8s.CoreV1Api);
  await core.createNode({ body: node });
  await poll(`node ${spec.name} Ready (KWOK)`, KUBE_START_TIMEOUT_MS, async () => {
    const n = await core.readNode({ name: spec.name });
    const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    // ... and the node lifecycle controller has lifted the taint a new Node is admitted with.
    const untainted = !(n.spec?.taints ?? []).some((t) => t.key === 'node.kubernetes.io/not-ready');
    return ready && untainted ? n : undefined;
  });
}

async function startKueue(ctx: {
  tools: KubeTools;
  dir: string;
  logDir: string;
  admin: k8s.KubeConfig;
  pki: { webhook: ReturnType<typeof kueuePki> };
  procs: ManagedProcess[];
  token: string;
  kubeconfigFor: (name: string, token: string) => string;
}): Promise<void> {
  const { tools, dir, admin } = ctx;
  const webhookPort = await freePort();
  const healthPort = await freePort();
  const kueueCa = readFileSync(ctx.pki.webhook.caCrt, 'utf8');
  const caBundle = Buffer.from(kueueCa).toString('base64');
  const secret = (f: string): string => readFileSync(f).toString('base64');
  await applyObjects(admin, [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: KUEUE_NAMESPACE } },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: KUEUE_WEBHOOK_SECRET, namespace: KUEUE_NAMESPACE },
      type: 'Opaque',
      data: {
        'ca.crt': secret(ctx.pki.webhook.caCrt),
        'ca.key': secret(ctx.pki.webhook.caKey),
        'tls.crt': secret(ctx.pki.webhook.crt),
        'tls.key': secret(ctx.pki.webhook.key),
      },
    } as k8s.V1Secret,
  ]);
  const crds = tools.kueueCrds.flatMap((f) => loadManifests(readFileSync(f, 'utf8')));
  for (const crd of crds as (k8s.KubernetesObject & { spec: Record<string, unknown> })[]) {
    if (!KUEUE_CONVERTED_CRDS.has(crd.metadata?.name ?? '')) continue;
    crd.spec.conversion = {
      strategy: 'Webhook',
      webhook: {
        clientConfig: { url: `https://127.0.0.1:${webhookPort}/convert`, caBundle },
        conversionReviewVersions: ['v1'],
      },
    };
  }
  await applyObjects(admin, crds);
  const ext = admin.makeApiClient(k8s.ApiextensionsV1Api);
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    await poll(`CRD ${name} Established`, KUBE_START_TIMEOUT_MS, async () => {
      const c = await ext.readCustomResourceDefinition({ name });
      return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True')
        ? c
        : undefined;
    });
  }
  await applyObjects(
    admin,
    kueueWebhooksOnLoopback(readFileSync(tools.kueueWebhooks, 'utf8'), webhookPort, kueueCa),
  );
  // What a kubelet would mount from the Secret: Kueue's rotator waits for these files.
  const certDir = path.join(dir, 'kueue-certs');
  mkdirSync(certDir, { recursive: true });
  copyFileSync(ctx.pki.webhook.caCrt, path.join(certDir, 'ca.crt'));
  copyFileSync(ctx.pki.webhook.crt, path.join(certDir, 'tls.crt'));
  copyFileSync(ctx.pki.webhook.key, path.join(certDir, 'tls.key'));
  const config = path.join(dir, 'kueue-config.yaml');
  writeFileSync(
    config,
    [
      'apiVersion: config.kueue.x-k8s.io/v1beta2',
      'kind: Configuration',
      `namespace: ${KUEUE_NAMESPACE}`,
      'health:',
      `  healthProbeBindAddress: 127.0.0.1:${healthPort}`,
      'metrics:',
      '  bindAddress: "0"',
      'webhook:',
      '  host: 127.0.0.1',
      `  port: ${webhookPort}`,
      `  certDir: ${certDir}`,
      'leaderElection:',
      '  leaderElect: false',
      // Kueue's own rotator keeps the certificates above (they are current) and injects their CA.
      'internalCertManagement:',
      '  enable: true',
      `  webhookServiceName: ${KUEUE_WEBHOOK_SERVICE}`,
      `  webhookSecretName: ${KUEUE_WEBHOOK_SECRET}`,
      'manageJobsWithoutQueueName: false',
      'integrations:',
      '  frameworks:',
      '  - batch/job',
      '',
    ].join('\n'),
  );
  const kubeconfig = ctx.kubeconfigFor('kueue', ctx.token);
  const kueue = startManaged(
    'kueue',
    tools.kueue,
    // The visibility API server would listen on every interface: not needed here.
    [`--config=${config}`, `--kubeconfig=${kubeconfig}`, '--feature-gates=VisibilityOnDemand=false'],
    {
      logFile: path.join(ctx.logDir, 'kueue.log'),
      env: { ...process.env, KUBECONFIG: kubeconfig, POD_NAMESPACE: KUEUE_NAMESPACE },
    },
  );
  ctx.procs.push(kueue);
  await waitUntilHealthy(
    kueue,
    () => httpOk(`http://127.0.0.1:${healthPort}/readyz`),
    KUEUE_START_TIMEOUT_MS,
  );
}
