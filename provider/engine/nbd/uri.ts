/**
 * How clients reach an attachment's export. The engine's `endpoint` is `nbds://HOST:PORT/<id>`;
 * libnbd (nbdinfo, nbdcopy, nbdfuse, nbdsh) takes the TLS-PSK username from the URI's user part
 * (without it, it uses the local login name) and the key file from `tls-psk-file`, and QEMU wants
 * a `tls-creds-psk` object whose directory holds a file named exactly `keys.psk`.
 */
export interface AttachmentAccess {
  attachmentId: string;
  endpoint: string;
  pskIdentity: string;
  pskFile: string;
}

export interface ClientAccess {
  host: string;
  port: number;
  exportName: string;
  /** For nbdinfo / nbdcopy / nbdfuse: `nbds://ID@HOST:PORT/ID?tls-psk-file=FILE`. */
  libnbdUri: string;
  /** For qemu-img / qemu-io / qemu: `--object` value; DIR must hold the key file as `keys.psk`. */
  qemuObject: (pskDir: string) => string;
  /** For qemu-img / qemu-io `--image-opts` (with the `tls0` object above). */
  qemuImageOpts: string;
}

export function clientAccess(a: AttachmentAccess): ClientAccess {
  const m = /^nbds?:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+):(\d+)(?:\/(.*))?$/.exec(a.endpoint);
  if (!m) throw new Error(`not an NBD endpoint: ${JSON.stringify(a.endpoint)}`);
  const host = m[1].replace(/^\[|\]$/g, "");
  const port = Number(m[2]);
  const exportName = m[3] ? decodeURIComponent(m[3]) : a.attachmentId;
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return {
    host,
    port,
    exportName,
    libnbdUri: `nbds://${encodeURIComponent(a.pskIdentity)}@${hostPart}:${port}/${encodeURIComponent(exportName)}?tls-psk-file=${encodeURIComponent(a.pskFile).replace(/%2F/g, "/")}`,
    qemuObject: (pskDir: string) => `tls-creds-psk,id=tls0,endpoint=client,dir=${pskDir},username=${a.pskIdentity}`,
    qemuImageOpts: `driver=nbd,host=${host},port=${port},export=${exportName},tls-creds=tls0`,
  };
}
