"""The dashboard: server-rendered pages under /console for Cloudlet's own admins."""
