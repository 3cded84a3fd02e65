def main(account_id: str, attempt: int):
    return {"account_id": account_id, "ready": attempt >= 2}
