/** DiskWrite hooks: data written through an attachment, as the instance would write it. */
import * as crypto from "crypto";
import type * as pulumi from "@pulumi/pulumi";
import { DISK_WRITE_MAX_BYTES, DiskWriteInputs, DiskWriteOutputs } from "../../schemas/diskWrite";
import { engine, existingEngine } from "../context";
import { compact, isUnknown, lookup, passInputs, programInputs, Props, validate } from "./common";

function payload(k: { text?: string; base64?: string }): Buffer {
  return k.text !== undefined ? Buffer.from(k.text, "utf8") : Buffer.from(k.base64 ?? "", "base64");
}

const digest = (data: Buffer) => crypto.createHash("sha256").update(data).digest("hex");

/** Outputs without the data: a state written by an older release echoed `text`/`base64` (D13). */
function withoutData(props: Props): Props {
  const { text: _t, base64: _b, ...rest } = props;
  return rest;
}

export const DiskWrite = {
  async check(_olds: Props, news: Props): Promise<pulumi.dynamic.CheckResult> {
    const { known: k, failures } = validate(DiskWriteInputs, news);
    const stated = (key: string) => news[key] !== undefined && news[key] !== null;
    if (stated("text") === stated("base64")) failures.push({ property: "text", reason: "set exactly one of text and base64." });
    else if ((k.text !== undefined || k.base64 !== undefined) && payload(k).length > DISK_WRITE_MAX_BYTES)
      failures.push({ property: k.text !== undefined ? "text" : "base64", reason: `at most ${DISK_WRITE_MAX_BYTES} bytes per DiskWrite.` });
    const e = existingEngine();
    if (e && k.attachmentId !== undefined) {
      const a = lookup(() => e.findAttachment(k.attachmentId as string));
      if (!a) failures.push({ property: "attachmentId", reason: `attachment ${k.attachmentId} does not exist.` });
      else if ((k.text !== undefined || k.base64 !== undefined) && (k.offset ?? 0) + payload(k).length > a.capacityBytes)
        failures.push({ property: "offset", reason: `the write ends past the ${a.capacityBytes} bytes the instance sees.` });
    }
    return { inputs: passInputs(news), failures };
  },

  async diff(_id: string, olds: Props, news: Props): Promise<pulumi.dynamic.DiffResult> {
    // A new attachment of the same disk needs no second write; new data or a new offset does.
    // The state keeps only the digest of the data written, so new data is compared by digest.
    const data = ["text", "base64"].some((k) => isUnknown(news[k])) ? null : payload(news as { text?: string; base64?: string });
    const changed = isUnknown(news.attachmentId) || news.attachmentId !== olds.attachmentId || data === null || digest(data) !== olds.sha256 || (news.offset ?? 0) !== olds.offset;
    return { changes: changed, replaces: [], deleteBeforeReplace: false };
  },

  async create(news: Props): Promise<pulumi.dynamic.CreateResult> {
    const outs = write(DiskWriteInputs.parse(programInputs(news)));
    return { id: `write-${crypto.randomBytes(4).toString("hex")}`, outs };
  },

  async read(_id: string, props: Props): Promise<pulumi.dynamic.ReadResult> {
    // The data stays on the disk whatever happens to the attachment: nothing to refresh.
    return { id: _id, props: withoutData(props) };
  },

  async update(_id: string, olds: Props, news: Props): Promise<pulumi.dynamic.UpdateResult> {
    const k = DiskWriteInputs.parse(programInputs(news));
    const same = digest(payload(k)) === olds.sha256 && (k.offset ?? 0) === olds.offset;
    if (same) return { outs: { ...(withoutData(olds) as DiskWriteOutputs), attachmentId: k.attachmentId } };
    return { outs: write(k) };
  },

  async delete(): Promise<void> {
    // Written data cannot be unwritten; the disk keeps it.
  },
};

function write(k: DiskWriteInputs): DiskWriteOutputs {
  const e = engine();
  const a = e.getAttachment(k.attachmentId);
  const data = payload(k);
  const offset = k.offset ?? 0;
  e.write(a.attachmentId, offset, data);
  e.flush(a.attachmentId);
  return compact({
    attachmentId: a.attachmentId,
    diskId: a.diskId,
    offset,
    bytes: data.length,
    sha256: digest(data),
  }) as DiskWriteOutputs;
}
