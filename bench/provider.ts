/** Placeholder: provider throughput through Pulumi's dynamic-provider host (filled in below). */
export interface ProviderOptions {
  resources: number;
}
export interface ProviderResult {
  resourcesPerS: number | null;
  note?: string;
}
export async function benchProvider(_base: string, _opts: ProviderOptions): Promise<ProviderResult> {
  return { resourcesPerS: null, note: "not measured yet" };
}
