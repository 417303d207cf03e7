/**
 * Provisioning of a real Kubernetes control plane for the integration tests, from the Go module
 * proxy only, cached by version in the per-user tools cache:
 *
 * - kube-apiserver, kube-controller-manager, kube-scheduler and etcd in one `go build` of a
 *   generated wrapper module. `go install k8s.io/kubernetes/cmd/...@vX` refuses the module's own
 *   `replace` directives (each `k8s.io/<staging>` module points into its repository), so the
 *   wrapper requires `k8s.io/kubernetes` and replaces every staging module it requires with the
 *   published `v0.<minor>.<patch>` of the same release. etcd is the `etcdmain` of
 *   `go.etcd.io/etcd/server/v3` at the version Kubernetes itself requires, so the four binaries
 *   share one module graph and one compilation of their common packages.
 * - KWOK (`sigs.k8s.io/kwok/cmd/kwok`) with its default node and pod stages, copied from the module
 *   cache beside the binary.
 * - Kueue (`sigs.k8s.io/kueue/cmd/kueue`) with its CRDs and webhook manifests, copied the same way.
 * - kubectl, in the same `go build`: it embeds kustomize and shares most of its packages with the
 *   control plane, so it adds about 100 s to that build (measured on a loaded 2-core machine, where
 *   a separate cold `go install` of kustomize took 733 s). `kubectl kustomize` renders
 *   deploy/k8s's overlays for the dry-run tests. KServe's InferenceService CRD is copied from the kserve module (no build).
 *
 * Each tool folder appears only once complete (built beside it, then renamed). Every build prints
 * its wall time, so a cold CI log shows what each costs.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { TOOLS_DIR } from './paths';
import { MissingPrerequisiteError, buildIntoPlace, run, which, type Logger } from './provision';

/** Newest Kubernetes minor whose go.mod (`go 1.26.0`) builds with the machine's Go 1.26. */
export const KUBERNETES_VERSION = 'v1.37.2';
/** etcd server release that Kubernetes v1.37.2 requires (its client is go.etcd.io/etcd/client/v3 v3.7.0). */
export const ETCD_VERSION = 'v3.7.0';
/** KWOK release (simulated kubelets); its go.mod has no `replace` directives. */
export const KWOK_VERSION = 'v0.8.0';
/** Kueue release (GPU quota and admission); `go install` works for it as is. */
export const KUEUE_VERSION = 'v0.17.0';

/** KServe release whose InferenceService CRD the KServe traffic router is tested against (files only, no build). */
export const KSERVE_VERSION = 'v0.17.0';

/** The Go toolchain the pinned modules need (`go` directive of k8s.io/kubernetes v1.37.2). */
const MIN_GO = [1, 26] as const;

/** Build flags for every binary: no cgo, reproducible paths, no symbol tables (smaller, faster link). */
const GO_ENV = { CGO_ENABLED: '0', GOFLAGS: '-trimpath -buildvcs=false' } as const;
const STRIP_LDFLAGS = '-s -w';

const log0: Logger = (line) => console.log(`[provision] ${line}`);

export interface KubeTools {
  apiserver: string;
  controllerManager: string;
  scheduler: string;
  etcd: string;
  kwok: string;
  /** KWOK Stage objects (multi-document YAML): the module's default node and pod stages. */
  kwokStages: string[];
  kueue: string;
  /** Kueue's CRDs (one YAML file each) and its webhook configurations. */
  kueueCrds: string[];
  kueueWebhooks: string;
  /** KServe's InferenceService CRD (for the KServe traffic router's tests). */
  kserveCrd: string;
  /** kubectl of the same release; `kubectl kustomize` renders deploy/k8s's overlays. */
  kubectl: string;
}

export const KUBE_DIR = path.join(TOOLS_DIR, `kubernetes-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}`);
export const KWOK_DIR = path.join(TOOLS_DIR, `kwok-${KWOK_VERSION}`);
export const KUEUE_DIR = path.join(TOOLS_DIR, `kueue-${KUEUE_VERSION}`);
export const KSERVE_DIR = path.join(TOOLS_DIR, `kserve-crds-${KSERVE_VERSION}`);
/** The InferenceService CRD inside the kserve module (its full, schema-bearing variant). */
const KSERVE_ISVC_CRD = path.join('config', 'crd', 'full', 'serving.kserve.io_inferenceservices.yaml');

/** KWOK stage sets (kustomize/stage/<set>) the simulated cluster runs: node lifecycle and general pods. */
const KWOK_STAGE_FILES = [
  'node/fast/node-initialize.yaml',
  'node/heartbeat/node-heartbeat.yaml',
  'pod/general/pod-create.yaml',
  'pod/general/pod-init-container-running.yaml',
  'pod/general/pod-init-container-completed.yaml',
  'pod/general/pod-ready.yaml',
  'pod/general/pod-complete.yaml',
  'pod/general/pod-delete.yaml',
  // Opt-in per pod (a label): a container that exits with a given code and reason (OOMKilled, ...).
  'pod/chaos/pod-container-running-failed.yaml',
];

function requireGo(what: string): string {
  const go = which('go');
  const hint = `Go >= ${MIN_GO.join('.')} is required to build ${what}: install it (https://go.dev/doc/install)`;
  if (!go) throw new MissingPrerequisiteError(hint);
  const r = spawnSync(go, ['env', 'GOVERSION'], { encoding: 'utf8' });
  const m = /^go(\d+)\.(\d+)/.exec(r.stdout.trim());
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (major < MIN_GO[0] || (major === MIN_GO[0] && minor < MIN_GO[1])) {
    throw new MissingPrerequisiteError(`${hint} (found ${r.stdout.trim() || 'an unknown version'})`);
  }
  return go;
}

function timed(log: Logger, what: string, fn: () => void): void {
  const started = Date.now();
  fn();
  log(`${what}: ${Math.round((Date.now() - started) / 1000)} s`);
}

const GoModDownload = z.object({ GoMod: z.string().min(1), Dir: z.string().min(1).optional() });

/** `go mod download -json mod@version`: where the module's go.mod (and source) landed in the cache. */
function downloadModule(go: string, mod: string, cwd: string): z.infer<typeof GoModDownload> {
  const r = spawnSync(go, ['mod', 'download', '-json', mod], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GOFLAGS: '-mod=mod' },
  });
  if (r.status !== 0) throw new Error(`go mod download ${mod} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  const parsed = GoModDownload.safeParse(JSON.parse(r.stdout));
  if (!parsed.success) throw new Error(`go mod download ${mod}: unexpected output (${parsed.error.message})`);
  return parsed.data;
}

/** The `k8s.io/<staging>` modules that k8s.io/kubernetes requires at the placeholder `v0.0.0`. */
export function stagingModules(goMod: string): string[] {
  const found = new Set<string>();
  for (const m of goMod.matchAll(/^\s*(k8s\.io\/[A-Za-z0-9._/-]+)\s+v0\.0\.0\s*(?:\/\/.*)?$/gm)) {
    if (m[1]) found.add(m[1]);
  }
  return [...found].sort();
}

/** The wrapper module's go.mod: Kubernetes and etcd, each staging module pinned to its published tag. */
export function wrapperGoMod(staging: readonly string[]): string {
  const stagingVersion = KUBERNETES_VERSION.replace(/^v1\./, 'v0.');
  return [
    '// Generated by src/stack/kube-tools.ts: builds the Kubernetes control plane and etcd from the',
    '// module proxy. Each k8s.io staging module is replaced with its published release.',
    'module mlops-control-plane.local/kube-tools',
    '',
    'go 1.26.0',
    '',
    'require (',
    `\tgo.etcd.io/etcd/server/v3 ${ETCD_VERSION}`,
    `\tk8s.io/kubernetes ${KUBERNETES_VERSION}`,
    ')',
    '',
    'replace (',
    ...staging.map((m) => `\t${m} => ${m} ${stagingVersion}`),
    ')',
    '',
    'tool (',
    '\tk8s.io/kubernetes/cmd/kube-apiserver',
    '\tk8s.io/kubernetes/cmd/kube-controller-manager',
    '\tk8s.io/kubernetes/cmd/kube-scheduler',
    '\tk8s.io/kubernetes/cmd/kubectl',
    ')',
    '',
  ].join('\n');
}

/** The etcd entry point: the server module's own `etcdmain`, nothing else. */
const ETCD_MAIN = `// Generated by src/stack/kube-tools.ts: the etcd server binary.
package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
`;

/** Version stamps the Kubernetes release build would set (clients and skew checks read them). */
function kubeLdflags(): string {
  const [, major, minor] = /^v(\d+)\.(\d+)/.exec(KUBERNETES_VERSION) ?? [];
  const vars = {
    gitVersion: KUBERNETES_VERSION,
    gitMajor: major ?? '',
    gitMinor: minor ?? '',
    gitTreeState: 'clean',
  };
  const x = Object.entries(vars).flatMap(([k, v]) => [
    `-X k8s.io/component-base/version.${k}=${v}`,
    `-X k8s.io/client-go/pkg/version.${k}=${v}`,
  ]);
  return [STRIP_LDFLAGS, ...x].join(' ');
}

const KUBE_BINARIES = [
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'etcd',
  'kubectl',
] as const;

function ensureKubeBinaries(log: Logger): void {
  const complete = (): boolean => KUBE_BINARIES.every((b) => existsSync(path.join(KUBE_DIR, 'bin', b)));
  if (complete()) return;
  const go = requireGo(`Kubernetes ${KUBERNETES_VERSION}`);
  log(
    `building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl ${KUBERNETES_VERSION} and etcd ${ETCD_VERSION} into ${KUBE_DIR} (first run only, 20-23 minutes on 2 cores)`,
  );
  buildIntoPlace(
    KUBE_DIR,
    complete,
    (tmp) => {
      const src = path.join(tmp, 'src');
      mkdirSync(path.join(src, 'cmd', 'etcd'), { recursive: true });
      const env = { ...process.env, ...GO_ENV };
      let staging: string[] = [];
      timed(log, 'resolve the Kubernetes module graph', () => {
        writeFileSync(path.join(src, 'go.mod'), 'module mlops-control-plane.local/probe\n\ngo 1.26.0\n');
        const k8s = downloadModule(go, `k8s.io/kubernetes@${KUBERNETES_VERSION}`, src);
        staging = stagingModules(readFileSync(k8s.GoMod, 'utf8'));
        if (staging.length === 0) throw new Error(`no k8s.io staging modules found in ${k8s.GoMod}`);
        writeFileSync(path.join(src, 'go.mod'), wrapperGoMod(staging));
        writeFileSync(path.join(src, 'cmd', 'etcd', 'main.go'), ETCD_MAIN);
        run(go, ['mod', 'tidy'], env, 'go mod tidy of the Kubernetes wrapper module', src);
      });
      timed(log, `go build of ${KUBE_BINARIES.join(', ')}`, () => {
        run(
          go,
          [
            'build',
            `-ldflags=${kubeLdflags()}`,
            '-o',
            `${path.join(tmp, 'bin')}${path.sep}`,
            'k8s.io/kubernetes/cmd/kube-apiserver',
            'k8s.io/kubernetes/cmd/kube-controller-manager',
            'k8s.io/kubernetes/cmd/kube-scheduler',
            'k8s.io/kubernetes/cmd/kubectl',
            './cmd/etcd',
          ],
          env,
          'go build of the Kubernetes control plane',
          src,
        );
      });
    },
    log,
  );
}

/** `go install mod@version` into `<tmp>/bin`, then the module's source folder in the module cache. */
function goInstall(go: string, pkg: string, mod: string, tmp: string, log: Logger): string {
  const env = { ...process.env, ...GO_ENV, GOBIN: path.join(tmp, 'bin') };
  timed(log, `go install ${pkg}`, () =>
    run(go, ['install', `-ldflags=${STRIP_LDFLAGS}`, pkg], env, `go install ${pkg}`, tmp),
  );
  const probe = path.join(tmp, 'probe');
  mkdirSync(probe);
  writeFileSync(path.join(probe, 'go.mod'), 'module mlops-control-plane.local/probe\n\ngo 1.26.0\n');
  const dir = downloadModule(go, mod, probe).Dir;
  if (!dir) throw new Error(`go mod download ${mod}: no source folder`);
  return dir;
}

function ensureKwok(log: Logger): void {
  const complete = (): boolean => existsSync(path.join(KWOK_DIR, 'bin', 'kwok'));
  if (complete()) return;
  const go = requireGo(`KWOK ${KWOK_VERSION}`);
  log(`building KWOK ${KWOK_VERSION} into ${KWOK_DIR} (first run only)`);
  buildIntoPlace(
    KWOK_DIR,
    complete,
    (tmp) => {
      const mod = `sigs.k8s.io/kwok@${KWOK_VERSION}`;
      const dir = goInstall(go, `sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}`, mod, tmp, log);
      const stages = path.join(tmp, 'stages');
      mkdirSync(stages);
      for (const f of KWOK_STAGE_FILES) {
        copyFileSync(path.join(dir, 'kustomize', 'stage', f), path.join(stages, f.replaceAll('/', '-')));
      }
    },
    log,
  );
}

function ensureKueue(log: Logger): void {
  const complete = (): boolean => existsSync(path.join(KUEUE_DIR, 'bin', 'kueue'));
  if (complete()) return;
  const go = requireGo(`Kueue ${KUEUE_VERSION}`);
  log(`building Kueue ${KUEUE_VERSION} into ${KUEUE_DIR} (first run only, 10-13 minutes on 2 cores)`);
  buildIntoPlace(
    KUEUE_DIR,
    complete,
    (tmp) => {
      const mod = `sigs.k8s.io/kueue@${KUEUE_VERSION}`;
      const dir = goInstall(go, `sigs.k8s.io/kueue/cmd/kueue@${KUEUE_VERSION}`, mod, tmp, log);
      const components = path.join(dir, 'config', 'components');
      const crds = path.join(tmp, 'crds');
      mkdirSync(crds);
      for (const f of readdirSync(path.join(components, 'crd', 'bases'))) {
        if (f.endsWith('.yaml')) copyFileSync(path.join(components, 'crd', 'bases', f), path.join(crds, f));
      }
      copyFileSync(path.join(components, 'webhook', 'manifests.yaml'), path.join(tmp, 'webhooks.yaml'));
    },
    log,
  );
}

/**
 * The InferenceService CRD of KServe (`serving.kserve.io/v1beta1`), copied from the kserve module
 * fetched through the module proxy (`go mod download`, no build): the KServe router's tests install
 * it and play the KServe controller themselves. Returns the CRD file.
 */
export function ensureKserveCrd(log: Logger = log0): string {
  const file = path.join(KSERVE_DIR, path.basename(KSERVE_ISVC_CRD));
  const complete = (): boolean => existsSync(file);
  if (complete()) return file;
  const go = requireGo(`KServe ${KSERVE_VERSION} CRDs`);
  log(`fetching the KServe ${KSERVE_VERSION} InferenceService CRD into ${KSERVE_DIR} (first run only)`);
  buildIntoPlace(
    KSERVE_DIR,
    complete,
    (tmp) => {
      writeFileSync(path.join(tmp, 'go.mod'), 'module mlops-control-plane.local/probe\n\ngo 1.26.0\n');
      let dir: string | undefined;
      timed(log, `go mod download github.com/kserve/kserve@${KSERVE_VERSION}`, () => {
        dir = downloadModule(go, `github.com/kserve/kserve@${KSERVE_VERSION}`, tmp).Dir;
      });
      if (!dir)
        throw new Error(`go mod download github.com/kserve/kserve@${KSERVE_VERSION}: no source folder`);
      copyFileSync(path.join(dir, KSERVE_ISVC_CRD), path.join(tmp, path.basename(KSERVE_ISVC_CRD)));
      rmSync(path.join(tmp, 'go.mod'));
    },
    log,
  );
  return file;
}

/** Builds (once) and returns every tool of the test cluster. */
export function ensureKubeTools(log: Logger = log0): KubeTools {
  ensureKubeBinaries(log);
  ensureKwok(log);
  ensureKueue(log);
  const kserveCrd = ensureKserveCrd(log);
  const bin = (dir: string, name: string): string => path.join(dir, 'bin', name);
  const stagesDir = path.join(KWOK_DIR, 'stages');
  const crdDir = path.join(KUEUE_DIR, 'crds');
  return {
    apiserver: bin(KUBE_DIR, 'kube-apiserver'),
    controllerManager: bin(KUBE_DIR, 'kube-controller-manager'),
    scheduler: bin(KUBE_DIR, 'kube-scheduler'),
    etcd: bin(KUBE_DIR, 'etcd'),
    kwok: bin(KWOK_DIR, 'kwok'),
    kwokStages: readdirSync(stagesDir)
      .sort()
      .map((f) => path.join(stagesDir, f)),
    kueue: bin(KUEUE_DIR, 'kueue'),
    kueueCrds: readdirSync(crdDir)
      .sort()
      .map((f) => path.join(crdDir, f)),
    kueueWebhooks: path.join(KUEUE_DIR, 'webhooks.yaml'),
    kserveCrd,
    kubectl: bin(KUBE_DIR, 'kubectl'),
  };
}
