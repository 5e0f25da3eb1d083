/** W2: how a client reaches an attachment's TLS-only export. */
import { clientAccess } from "../../provider/engine/nbd/uri";

describe("clientAccess", () => {
  const att = { attachmentId: "att-1a2b3c4d", endpoint: "nbds://127.0.0.1:10809/att-1a2b3c4d", pskIdentity: "att-1a2b3c4d", pskFile: "/var/lib/encdisk/nbd/att-1a2b3c4d.psk" };

  test("libnbd URI carries the PSK identity as the user and the key file", () => {
    const c = clientAccess(att);
    expect(c).toMatchObject({ host: "127.0.0.1", port: 10809, exportName: "att-1a2b3c4d" });
    expect(c.libnbdUri).toBe("nbds://att-1a2b3c4d@127.0.0.1:10809/att-1a2b3c4d?tls-psk-file=/var/lib/encdisk/nbd/att-1a2b3c4d.psk");
  });

  test("qemu object and image options", () => {
    const c = clientAccess(att);
    expect(c.qemuObject("/tmp/psk")).toBe("tls-creds-psk,id=tls0,endpoint=client,dir=/tmp/psk,username=att-1a2b3c4d");
    expect(c.qemuImageOpts).toBe("driver=nbd,host=127.0.0.1,port=10809,export=att-1a2b3c4d,tls-creds=tls0");
  });

  test("IPv6 endpoints and endpoints that already carry a user", () => {
    const c = clientAccess({ ...att, endpoint: "nbds://att-1a2b3c4d@[::1]:9000/att-1a2b3c4d" });
    expect(c.host).toBe("::1");
    expect(c.libnbdUri).toBe("nbds://att-1a2b3c4d@[::1]:9000/att-1a2b3c4d?tls-psk-file=/var/lib/encdisk/nbd/att-1a2b3c4d.psk");
    expect(() => clientAccess({ ...att, endpoint: "http://x" })).toThrow(/not an NBD endpoint/);
  });
});
