package github

// payload holds the fields of push, pull_request and release deliveries
// that runs get as variables.
type payload struct {
	Action     string `json:"action"`
	Ref        string `json:"ref"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	HeadCommit *struct {
		ID        string `json:"id"`
		Author    person `json:"author"`
		Committer person `json:"committer"`
	} `json:"head_commit"`
	PullRequest *struct {
		Head struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"head"`
		User user `json:"user"`
	} `json:"pull_request"`
	Release *struct {
		TagName         string `json:"tag_name"`
		TargetCommitish string `json:"target_commitish"`
		Author          user   `json:"author"`
		CreatedAt       string `json:"created_at"`
		PublishedAt     string `json:"published_at"`
	} `json:"release"`
}

type person struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Username string `json:"username"`
}

type user struct {
	Login string `json:"login"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Variable names (the seed's list).
const varPrefix = "GOFER_EXTENSION_GITHUB_"

// variables builds a run's variables for a supported event; ok is false
// for an event that starts no run.
func variables(event string, p *payload) (map[string]string, bool) {
	v := map[string]string{
		varPrefix + "EVENT":      event,
		varPrefix + "ACTION":     p.Action,
		varPrefix + "REPOSITORY": p.Repository.FullName,
	}
	switch event {
	case "push":
		v[varPrefix+"REF"] = p.Ref
		if c := p.HeadCommit; c != nil {
			v[varPrefix+"HEAD_COMMIT_ID"] = c.ID
			v[varPrefix+"HEAD_COMMIT_AUTHOR_NAME"] = c.Author.Name
			v[varPrefix+"HEAD_COMMIT_AUTHOR_EMAIL"] = c.Author.Email
			v[varPrefix+"HEAD_COMMIT_AUTHOR_USERNAME"] = c.Author.Username
			v[varPrefix+"HEAD_COMMIT_COMMITTER_NAME"] = c.Committer.Name
			v[varPrefix+"HEAD_COMMIT_COMMITTER_EMAIL"] = c.Committer.Email
			v[varPrefix+"HEAD_COMMIT_COMMITTER_USERNAME"] = c.Committer.Username
		}
	case "pull_request":
		if pr := p.PullRequest; pr != nil {
			v[varPrefix+"PULLREQUEST_HEAD_REF"] = pr.Head.Ref
			v[varPrefix+"PULLREQUEST_HEAD_SHA"] = pr.Head.SHA
			v[varPrefix+"PULLREQUEST_AUTHOR_USERNAME"] = pr.User.Login
			v[varPrefix+"PULLREQUEST_AUTHOR_EMAIL"] = pr.User.Email
			v[varPrefix+"PULLREQUEST_AUTHOR_NAME"] = pr.User.Name
		}
	case "release":
		if r := p.Release; r != nil {
			v[varPrefix+"RELEASE_TAG_NAME"] = r.TagName
			v[varPrefix+"RELEASE_TARGET_COMMITISH"] = r.TargetCommitish
			v[varPrefix+"RELEASE_AUTHOR_LOGIN"] = r.Author.Login
			v[varPrefix+"RELEASE_CREATED_AT"] = r.CreatedAt
			v[varPrefix+"RELEASE_PUBLISHED_AT"] = r.PublishedAt
		}
	default:
		return nil, false
	}
	return v, true
}
