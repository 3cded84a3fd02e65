package inner

func main(url string) (string, error) {
	return url, nil
}
