// A token in the query string is refused (400) in any letter case and spelling, even
// with a valid Authorization header, and never reaches STS or a log line.
import t from 'tap'
import { build } from '../../helpers/build.js'

t.test('query tokens are refused case-insensitively', async (t) => {
  const h = await build(t)
  const token = h.token()
  const names = ['token', 'Token', 'TOKEN', 'access_token', 'ACCESS_TOKEN', 'Access-Token', 'id_token', 'Id_Token', 'jwt', 'JWT', 'authorization', 'Authorization']
  for (const name of names) {
    const res = await h.app.inject({ method: 'POST', url: `/credentials?${name}=${token}`, headers: { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, 400, `?${name}=: 400`)
    t.equal(res.json().code, 'STS_VENDING_TOKEN_IN_QUERY', `?${name}=: TOKEN_IN_QUERY`)
  }
  const shaped = await h.app.inject({ method: 'POST', url: `/credentials?format=oss-app-server&Jwt=${token}`, headers: { authorization: `Bearer ${token}` } })
  t.equal(shaped.json().ErrorCode, 'STS_VENDING_TOKEN_IN_QUERY', 'in the format asked for')
  t.equal(h.emulator.callCount, 0, 'none reached STS')

  const fine = await h.app.inject({ method: 'POST', url: '/credentials?format=ali-oss&tokens=1&my_token=2', headers: { authorization: `Bearer ${token}` } })
  t.equal(fine.statusCode, 200, 'other parameters are not tokens')
  h.secret(fine.json().accessKeySecret)
  h.secret(fine.json().securityToken)
})
