// Certificates for the TLS tests, made with the openssl CLI (faketime for one that has
// expired) into a private directory: a CA, leaves signed by it with given subjectAltNames,
// and the hashed client secrets the server's principals hold (runnel-server hash-secret).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { serverBin } from './harness.mjs';

// The openssl CLI in dir (under faketime when given); resolves its stdout.
export function ossl(dir, args, { faketime } = {}) {
  const [bin, a] = faketime ? ['faketime', ['-f', faketime, 'openssl', ...args]] : ['openssl', args];
  return execFileSync(bin, a, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

// A CA in dir: name.pem, name.key.
export function makeCa(dir, name) {
  ossl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${name}`]);
}

// A leaf in dir signed by ca: name.pem, name.key (mode 0600), subjectAltName san; with
// faketime (e.g. '-3d') and days it can be made already expired.
export function makeLeaf(dir, name, ca, san, { days = 30, faketime } = {}) {
  ossl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  ossl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`,
    '-CAcreateserial', '-out', `${name}.pem`, '-days', String(days), '-extfile', `${name}.ext`], { faketime });
  fs.chmodSync(path.join(dir, `${name}.key`), 0o600);
}

// The secret_hash of a principal's client secret, as `runnel-server hash-secret` prints it.
export function hashSecret(secret) {
  return execFileSync(serverBin, ['hash-secret'], { input: secret, encoding: 'utf8' }).trim();
}

// The server's TLS keys for a certificate made by makeLeaf (file names in dir).
export function serverTls(dir, { cert = 'server', ca, auth = 'none' } = {}) {
  return [
    `tls_cert = "${path.join(dir, `${cert}.pem`)}";`,
    `tls_key = "${path.join(dir, `${cert}.key`)}";`,
    ca ? `tls_client_ca = "${path.join(dir, `${ca}.pem`)}";` : '',
    `tls_client_auth = "${auth}";`,
  ].join('\n');
}
