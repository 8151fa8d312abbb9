export interface DashboardAssetFiles {
  html: string;
  js: string;
  css: string;
  etag: string;
}
export function buildDashboardAssets(): Promise<DashboardAssetFiles>;
