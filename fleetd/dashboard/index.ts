/** fleetd's web dashboard: the live cluster feed and the routes the API mounts (see README.md). */
export { ClusterFeed, type ClusterFeedOptions, type FeedSubscriber } from "./cluster-feed";
export { createDashboardRoutes, type DashboardRoutes, type DashboardRoutesOptions } from "./dashboard-routes";
