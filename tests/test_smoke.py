def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "登录".encode() in response.data or b"Log in" in response.data


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_admin_sees_home(client, auth):
    auth.login("admin")
    response = client.get("/")
    assert response.status_code == 200
