/** The application role's URL on the same server and database as an admin/owner URL. */
export function appUrlFromAdminUrl(adminUrl: string, password: string, role = 'payorch_app'): string {
  const url = new URL(adminUrl);
  url.username = role;
  url.password = password;
  return url.toString();
}
